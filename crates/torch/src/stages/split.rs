//! `split`: the forget / remain / sample index lists of one seed, saved as split.json.

use crate::data::split;
use camu_core::params::Params;
use camu_core::stage::io::write_metrics;
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::split::scenario;
use serde_json::{Map, json};

pub struct SplitRun;

impl Runner for SplitRun {
    fn kind(&self) -> &'static str {
        "split"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let p = Params(&job.params);
        let ds = super::Runtime::start(job)?.dataset()?;
        let labels = Vec::<i64>::try_from(&ds.train_y).map_err(crate::MlError::from)?;
        let sc = scenario(&p)?;
        for c in sc.forgotten_classes() {
            if c < 0 || c >= ds.meta.classes {
                return Err(crate::MlError::Split(format!(
                    "class {c} is not a class of {} (0..{})",
                    ds.meta.name,
                    ds.meta.classes - 1
                ))
                .into());
            }
        }
        let seed = p.i64("seed", 0)?;
        let mut s = split::make(&labels, sc, seed, p.usize("forget_repeat", 1)?)?;
        let fraction = p.f64("validation", 0.0)?;
        if fraction > 0.0 {
            // Its own seed, shared by every split seed: a selection tuned on one seed's split must
            // not have read the test samples another seed reports on.
            let vseed = p.i64("validation_seed", 0)?;
            let v = split::validation(ds.meta.n_test, fraction, vseed);
            // An empty part would let a selection score on nothing and say nothing about it.
            if v.is_empty() || v.len() as i64 == ds.meta.n_test {
                return Err(crate::MlError::Split(format!(
                    "validation: {fraction} of the {} test samples of {} is {} samples; the validation part must hold at least one sample and leave at least one for the test part",
                    ds.meta.n_test,
                    ds.meta.name,
                    v.len()
                )).into());
            }
            s.validation = Some(v);
        }
        let path = job.out_dir.join("split.json");
        let bytes = serde_json::to_vec(&s).expect("a split serializes");
        std::fs::write(&path, bytes).map_err(|source| StageError::Io {
            action: "write",
            path,
            source,
        })?;
        let mut m = Map::new();
        m.insert("forget".into(), json!(s.forget.len()));
        m.insert("remain".into(), json!(s.remain.len()));
        m.insert("sample".into(), json!(s.sample.len()));
        if let Some(v) = &s.validation {
            m.insert("validation".into(), json!(v.len()));
        }
        write_metrics(job, &m)
    }
}
