//! `unlearn`: runs one unlearning method on the original model. unlearn_time_s is the wall time of
//! the method alone (data already in memory; no evaluation).

use super::ml_common::{input_with, read_json, write_metrics};
use super::{Kind, StageJob};
use crate::data::Dataset;
use crate::data::split::Split;
use crate::methods::{self, Context};
use crate::ml;
use crate::models::Model;
use crate::params::Params;
use serde_json::{Map, Value, json};
use std::time::Instant;

pub struct Unlearn;

/// Keys every method accepts; the rest belong to the method.
const COMMON: &[&str] = &["method", "seed", "device", "original", "split"];

fn method_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| !COMMON.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn method(params: &Map<String, Value>) -> Result<&'static dyn methods::Method, String> {
    let name = Params(params)
        .opt_str("method")?
        .ok_or("parameter `method` is required")?;
    methods::lookup(name).ok_or_else(|| {
        format!(
            "unknown method `{name}` (known: {})",
            methods::names().join(", ")
        )
    })
}

impl Kind for Unlearn {
    fn name(&self) -> &'static str {
        "unlearn"
    }
    fn version(&self) -> u32 {
        1
    }
    /// The method's version is folded into the key through its name and this kind's version:
    /// see `key_version`.
    fn key_version(&self, params: &Map<String, Value>) -> u32 {
        method(params)
            .map(|m| self.version() * 1000 + m.version())
            .unwrap_or(self.version())
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        let m = method(params)?;
        Params(params).i64("seed", 0)?;
        m.validate(&method_params(params))
            .map_err(|e| format!("method `{}`: {e}", m.name()))
    }
    fn run(&self, job: &StageJob) -> Result<(), String> {
        ml::set_threads(job.threads);
        let p = Params(&job.params);
        let device = ml::device(p.str("device", "auto")?)?;
        let m = method(&job.params)?;
        let data =
            Dataset::load(&input_with(job, "dataset.json", None)?).map_err(|e| e.to_string())?;
        let split: Split =
            read_json(&input_with(job, "split.json", p.opt_str("split")?)?.join("split.json"))?;
        let original_dir = input_with(job, "model.safetensors", p.opt_str("original")?)?;
        let original = Model::load(&original_dir, device).map_err(|e| e.to_string())?;
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
            .map_err(|e| e.to_string())?;
        let mut metrics = outcome.details;
        metrics.insert("method".into(), json!(m.name()));
        metrics.insert("method_version".into(), json!(m.version()));
        metrics.insert("unlearn_time_s".into(), json!(secs));
        metrics.insert("device".into(), json!(ml::device_name(device)));
        metrics.insert("threads".into(), json!(job.threads));
        write_metrics(job, &metrics)
    }
}
