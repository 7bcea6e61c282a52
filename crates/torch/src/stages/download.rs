//! `download`: obtains a dataset (verified) and stores its decoded tensors as the stage output.

use crate::data;
use camu_core::stage::io::write_metrics;
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::download::DownloadParams;
use serde_json::{Map, json};
use tch::Tensor;

pub struct DownloadRun;

impl Runner for DownloadRun {
    fn kind(&self) -> &'static str {
        "download"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let p = DownloadParams::read(&job.params)?;
        let mut ds = if p.dataset == "synthetic" {
            data::synthetic(
                p.seed,
                p.classes as i64,
                p.n_train as i64,
                p.n_test as i64,
                p.noise,
            )
        } else {
            data::obtain(&p.dataset, &job.data_dir, &p.mirrors).map_err(crate::MlError::from)?
        };
        // Optional subsets (first N samples) for fast runs.
        let cut = |x: &Tensor, n: Option<i64>| match n {
            Some(n) if n < x.size()[0] => x.narrow(0, 0, n),
            _ => x.shallow_clone(),
        };
        let limit = |n: Option<usize>| n.map(|n| n as i64);
        let (lt, le) = (limit(p.limit_train), limit(p.limit_test));
        ds.train_x = cut(&ds.train_x, lt);
        ds.train_y = cut(&ds.train_y, lt);
        ds.test_x = cut(&ds.test_x, le);
        ds.test_y = cut(&ds.test_y, le);
        ds.meta.n_train = ds.train_y.size()[0];
        ds.meta.n_test = ds.test_y.size()[0];
        ds.save(&job.out_dir).map_err(crate::MlError::from)?;
        let mut m = Map::new();
        m.insert("dataset".into(), json!(ds.meta));
        write_metrics(job, &m)
    }
}
