//! `download`: obtains a dataset (verified) and stores its decoded tensors as the stage output.

use crate::protocol::DATASETS;
use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::Kind;
use serde_json::{Map, Value};

pub struct Download;

const PARAMS: &[&str] = &[
    "dataset",
    "mirrors",
    "limit_train",
    "limit_test",
    "classes",
    "n_train",
    "n_test",
    "noise",
    "seed",
];

impl Kind for Download {
    fn name(&self) -> &'static str {
        "download"
    }
    fn version(&self) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        let ds = p
            .opt_str("dataset")?
            .ok_or("parameter `dataset` is required")?;
        if !DATASETS.contains(&ds) {
            return Err(format!("unknown dataset `{ds}` (known: {})", DATASETS.join(", ")).into());
        }
        p.strings("mirrors")?;
        for k in ["limit_train", "limit_test", "classes", "n_train", "n_test"] {
            p.opt_i64(k)?;
        }
        p.opt_f64("noise")?;
        Ok(())
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
