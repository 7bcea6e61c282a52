//! The runs of the ML stage kinds, executed by the `camu-worker` binary. Their declarations
//! (parameters, validation, versions) are in `camu_lab::kinds`.

mod audit;
mod download;
mod evaluate;
mod split;
mod train;
mod unlearn;

use crate::MlError;
use crate::data::Dataset;
use crate::data::split::Split;
use crate::ml;
use crate::models::Model;
use camu_core::params::Params;
use camu_core::stage::io::{input_with, read_json};
use camu_core::stage::{Runner, StageError, StageJob};
use std::path::PathBuf;
use tch::Device;

/// The kinds the worker runs.
pub static RUNNERS: &[&dyn Runner] = &[
    &download::DownloadRun,
    &split::SplitRun,
    &train::TrainRun,
    &unlearn::UnlearnRun,
    &evaluate::EvaluateRun,
    &audit::AuditRun,
];

/// How a model is named in records and reports, from the metrics of the stage that produced it:
/// its method (with " (tuned)" when a `select` stage chose its settings, so a tuned run is its
/// own row), else retrain (trained on Dr) or original.
pub fn model_label(produced: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    use serde_json::json;
    match (
        produced.get("method").and_then(serde_json::Value::as_str),
        produced.get("selected"),
    ) {
        (Some(m), Some(_)) => json!(format!("{m} (tuned)")),
        (Some(m), None) => json!(m),
        (None, _) => match produced.get("on") {
            Some(v) if v == "remain" => json!("retrain"),
            _ => json!("original"),
        },
    }
}

/// What every ML stage starts from: its thread count set, its device chosen, and its declared
/// inputs loaded on demand.
pub struct Runtime<'j> {
    pub job: &'j StageJob,
    pub params: Params<'j>,
    pub device: Device,
}

impl<'j> Runtime<'j> {
    pub fn start(job: &'j StageJob) -> Result<Runtime<'j>, StageError> {
        ml::set_threads(job.threads);
        let params = Params(&job.params);
        let asked = params.str("device", "auto")?;
        let device = ml::device(asked)?;
        if asked == "auto" && device == Device::Cpu {
            tracing::info!("device auto: no CUDA device visible, running on the CPU");
        }
        tracing::info!(
            device = %ml::device_name(device),
            gpus = ?job.gpus,
            gpu_share = ?job.gpu_share,
            "device"
        );
        Ok(Runtime {
            job,
            params,
            device,
        })
    }

    /// The dataset of the only input that has one.
    pub fn dataset(&self) -> Result<Dataset, StageError> {
        let dir = input_with(self.job, "dataset.json", None)?;
        Ok(Dataset::load(&dir).map_err(MlError::from)?)
    }

    /// The split named by parameter `split`, or of the only input that has one.
    pub fn split(&self) -> Result<Split, StageError> {
        let role = self.params.opt_str("split")?;
        read_json(&input_with(self.job, "split.json", role)?.join("split.json"))
    }

    /// A model, from the input named by parameter `param` (or the only input with a model),
    /// with the directory it came from.
    pub fn model(&self, param: &str) -> Result<(Model, PathBuf), StageError> {
        let dir = input_with(self.job, "model.safetensors", self.params.opt_str(param)?)?;
        let model = Model::load(&dir, self.device).map_err(MlError::from)?;
        Ok((model, dir))
    }
}

#[cfg(test)]
mod registry_parity {
    use camu_lab::kinds::{RUNNERS as LAB_RUNNERS, WORKER, registry};

    /// Every declared kind has exactly one runner, in the binary its declaration names (the
    /// worker's `RUNNERS` here, `camu-pipe`'s in camu-lab), and every runner a declaration.
    #[test]
    fn every_declared_kind_runs_in_its_binary_and_every_runner_is_declared() {
        let r = registry();
        let worker: Vec<&str> = super::RUNNERS.iter().map(|x| x.kind()).collect();
        let pipe: Vec<&str> = LAB_RUNNERS.iter().map(|x| x.kind()).collect();
        for name in r.names() {
            let kind = r.lookup(name).unwrap();
            let (here, other) = match kind.worker() {
                Some(w) => {
                    assert_eq!(w, WORKER, "{name}");
                    (&worker, &pipe)
                }
                None => (&pipe, &worker),
            };
            assert_eq!(
                here.iter().filter(|k| **k == name).count(),
                1,
                "kind `{name}`: one runner where it runs"
            );
            assert!(!other.contains(&name), "kind `{name}`: a runner in both");
        }
        for k in worker.iter().chain(&pipe) {
            assert!(r.lookup(k).is_some(), "runner `{k}` has no declaration");
        }
    }
}
