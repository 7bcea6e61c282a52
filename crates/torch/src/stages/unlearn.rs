//! `unlearn`: runs one unlearning method on the original model. unlearn_time_s is the wall time of
//! the method alone (data already in memory; no evaluation).

use crate::methods::{self, Context};
use crate::ml;
use camu_core::stage::io::input_with;
use camu_core::stage::io::{read_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::unlearn::{Chosen, method, method_params, with_selection};
use serde_json::{Map, Value, json};
use std::time::Instant;

pub struct UnlearnRun;

impl Runner for UnlearnRun {
    fn kind(&self) -> &'static str {
        "unlearn"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let name = match method(&job.params)? {
            Chosen::Python(py) => {
                return camu_lab::python::run(job, &py, method_parameters(job)?);
            }
            Chosen::Builtin(m) => m.name(),
        };
        let rt = super::Runtime::start(job)?;
        let (p, device) = (&rt.params, rt.device);
        let m = methods::lookup(name)
            .ok_or_else(|| StageError::NoRunner(format!("unlearn (method `{name}`)")))?;
        let data = rt.dataset()?;
        let split = rt.split()?;
        let (original, original_dir) = rt.model("original")?;
        let original_record: Map<String, Value> =
            read_json(&original_dir.join("metrics.json")).unwrap_or_default();
        let mp = method_parameters(job)?;
        let ctx = Context {
            original: &original,
            data: &data,
            split: &split,
            device,
            seed: p.i64("seed", 0)?,
            params: &mp,
            original_record: &original_record,
        };
        tracing::info!(method = m.name(), forget = split.forget.len(), "unlearning");
        let t0 = Instant::now();
        let divergence = methods::common::DivergenceRecord::start();
        let outcome = m.run(&ctx)?;
        let secs = t0.elapsed().as_secs_f64();
        let diverged_in = divergence.at();
        drop(divergence);
        outcome
            .model
            .save(&job.out_dir)
            .map_err(crate::MlError::from)?;
        let mut metrics = outcome.details;
        metrics.insert("method".into(), json!(m.name()));
        metrics.insert("method_version".into(), json!(m.version()));
        metrics.insert("unlearn_time_s".into(), json!(secs));
        metrics.insert("device".into(), json!(ml::device_name(device)));
        metrics.insert("threads".into(), json!(job.threads));
        if p.opt_str("from")?.is_some() {
            metrics.insert("selected".into(), json!(mp));
        }
        if let Some(why) = diverged_in {
            metrics.insert("diverged_in".into(), json!(why));
        }
        write_metrics(job, &metrics)
    }
}

/// The method's parameters: `with` without the common keys, and with `from: SELECT` the values
/// that stage chose on top.
fn method_parameters(job: &StageJob) -> Result<Map<String, Value>, StageError> {
    match camu_core::params::Params(&job.params).opt_str("from")? {
        Some(from) => {
            let dir = input_with(job, "selected.json", Some(from))?;
            let selected: Map<String, Value> = read_json(&dir.join("selected.json"))?;
            let mp = with_selection(&job.params, &selected)?;
            tracing::info!(from, values = %selected["values"], "parameters from the selection");
            Ok(mp)
        }
        None => Ok(method_params(&job.params)),
    }
}
