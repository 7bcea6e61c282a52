//! `unlearn`: runs one unlearning method on the original model. unlearn_time_s is the wall time of
//! the method alone (data already in memory; no evaluation).

use crate::data::Dataset;
use crate::data::split::Split;
use crate::methods::{self, Context};
use crate::ml;
use crate::models::Model;
use camu_core::params::Params;
use camu_core::stage::io::{input_with, read_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::unlearn::{method, method_params};
use serde_json::{Map, Value, json};
use std::time::Instant;

pub struct Unlearn;

impl Runner for Unlearn {
    fn kind(&self) -> &'static str {
        "unlearn"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        ml::set_threads(job.threads);
        let p = Params(&job.params);
        let device = ml::device(p.str("device", "auto")?)?;
        let name = method(&job.params)?.name();
        let m = methods::lookup(name)
            .ok_or_else(|| format!("method `{name}` has no implementation"))?;
        let data =
            Dataset::load(&input_with(job, "dataset.json", None)?).map_err(crate::MlError::from)?;
        let split: Split =
            read_json(&input_with(job, "split.json", p.opt_str("split")?)?.join("split.json"))?;
        let original_dir = input_with(job, "model.safetensors", p.opt_str("original")?)?;
        let original = Model::load(&original_dir, device).map_err(crate::MlError::from)?;
        let original_record: Map<String, Value> =
            read_json(&original_dir.join("metrics.json")).unwrap_or_default();
        let mp = method_params(&job.params);
        let ctx = Context {
            original: &original,
            data: &data,
            split: &split,
            device,
            threads: job.threads,
            seed: p.i64("seed", 0)?,
            params: &mp,
            original_record: &original_record,
        };
        tracing::info!(method = m.name(), forget = split.forget.len(), "unlearning");
        let t0 = Instant::now();
        let outcome = m.unlearn(&ctx)?;
        let secs = t0.elapsed().as_secs_f64();
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
        write_metrics(job, &metrics)
    }
}
