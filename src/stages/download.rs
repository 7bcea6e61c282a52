//! `download`: obtains a dataset (verified) and stores its decoded tensors as the stage output.

use super::ml_common::write_metrics;
use super::{Kind, StageJob};
use crate::data;
use crate::params::{Params, check_keys};
use serde_json::{Map, Value, json};
use tch::Tensor;

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
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        let ds = p
            .opt_str("dataset")?
            .ok_or("parameter `dataset` is required")?;
        if !data::DATASETS.contains(&ds) {
            return Err(format!(
                "unknown dataset `{ds}` (known: {})",
                data::DATASETS.join(", ")
            ));
        }
        p.strings("mirrors")?;
        for k in ["limit_train", "limit_test", "classes", "n_train", "n_test"] {
            p.opt_i64(k)?;
        }
        p.opt_f64("noise")?;
        Ok(())
    }
    fn run(&self, job: &StageJob) -> Result<(), String> {
        let p = Params(&job.params);
        let name = p.str("dataset", "")?;
        let mut ds = if name == "synthetic" {
            data::synthetic(
                p.i64("seed", 0)?,
                p.i64("classes", 10)?,
                p.i64("n_train", 2000)?,
                p.i64("n_test", 500)?,
                p.f64("noise", 0.5)?,
            )
        } else {
            data::obtain(name, &job.data_dir, &p.strings("mirrors")?).map_err(|e| e.to_string())?
        };
        // Optional subsets (first N samples) for fast runs.
        let cut = |x: &Tensor, n: Option<i64>| match n {
            Some(n) if n < x.size()[0] => x.narrow(0, 0, n),
            _ => x.shallow_clone(),
        };
        let (lt, le) = (p.opt_i64("limit_train")?, p.opt_i64("limit_test")?);
        ds.train_x = cut(&ds.train_x, lt);
        ds.train_y = cut(&ds.train_y, lt);
        ds.test_x = cut(&ds.test_x, le);
        ds.test_y = cut(&ds.test_y, le);
        ds.meta.n_train = ds.train_y.size()[0];
        ds.meta.n_test = ds.test_y.size()[0];
        ds.save(&job.out_dir).map_err(|e| e.to_string())?;
        let mut m = Map::new();
        m.insert("dataset".into(), json!(ds.meta));
        write_metrics(job, &m)
    }
}
