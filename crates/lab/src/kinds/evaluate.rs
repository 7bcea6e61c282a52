//! `evaluate`: every metric of one model on one split, next to the retrained model when given.

use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::Kind;
use serde_json::{Map, Value};

pub struct Evaluate;

const PARAMS: &[&str] = &[
    "model",
    "reference",
    "split",
    "mia",
    "mia_samples",
    "mia_export",
    "batch_size",
    "device",
    "seed",
    "original",
    "relearn",
    "relearn_samples",
    "relearn_lr",
    "relearn_batch_size",
    "relearn_max_epochs",
];

impl Kind for Evaluate {
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self) -> u32 {
        // 2: diverged models recorded as such; the XGBoost-semantics attack on the 99% fit split;
        // provenance of every input.
        2
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        p.bool("mia", true)?;
        p.usize("mia_samples", 4000)?;
        p.bool("mia_export", false)?;
        p.usize("batch_size", 512)?;
        if p.bool("relearn", false)? && p.opt_str("original")?.is_none() {
            return Err("`relearn: true` needs `original: STAGE` (the original model's Df loss is the target)".into());
        }
        p.usize("relearn_samples", 1000)?;
        p.f64("relearn_lr", 0.1)?;
        p.usize("relearn_max_epochs", 100)?;
        Ok(())
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
