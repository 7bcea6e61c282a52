//! `split`: the forget / remain / sample index lists of one seed, saved as split.json.

use super::ml_common::{input_with, write_metrics};
use super::{Kind, StageJob};
use crate::data::Dataset;
use crate::data::split::{self, Scenario};
use crate::params::{Params, check_keys};
use serde_json::{Map, Value, json};

pub struct SplitKind;

const PARAMS: &[&str] = &[
    "scenario",
    "fraction",
    "classes",
    "proportions",
    "seed",
    "forget_repeat",
];

fn scenario(p: &Params) -> Result<Scenario, String> {
    match p.str("scenario", "random")? {
        "random" => Ok(Scenario::Random {
            fraction: p.f64("fraction", 0.1)?,
        }),
        "class" => Ok(Scenario::Class {
            classes: p.i64s("classes")?.unwrap_or(vec![0]),
        }),
        "per_class" => {
            let props =
                p.0.get("proportions")
                    .and_then(Value::as_object)
                    .ok_or("scenario `per_class` needs `proportions`, e.g. {\"0\": 0.5}")?;
            let mut m = std::collections::BTreeMap::new();
            for (k, v) in props {
                let c: i64 = k
                    .parse()
                    .map_err(|_| format!("proportions: `{k}` is not a class number"))?;
                m.insert(
                    c,
                    v.as_f64()
                        .ok_or(format!("proportions.{k} must be a number"))?,
                );
            }
            Ok(Scenario::PerClass { proportions: m })
        }
        other => Err(format!(
            "unknown scenario `{other}` (random, class, per_class)"
        )),
    }
}

impl Kind for SplitKind {
    fn name(&self) -> &'static str {
        "split"
    }
    fn version(&self) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        scenario(&p)?;
        p.i64("seed", 0)?;
        if p.usize("forget_repeat", 1)? == 0 {
            return Err("parameter `forget_repeat` must be at least 1".into());
        }
        Ok(())
    }
    fn run(&self, job: &StageJob) -> Result<(), String> {
        let p = Params(&job.params);
        let ds =
            Dataset::load(&input_with(job, "dataset.json", None)?).map_err(|e| e.to_string())?;
        let labels = Vec::<i64>::try_from(&ds.train_y).map_err(|e| e.to_string())?;
        let sc = scenario(&p)?;
        for c in sc.forgotten_classes() {
            if c < 0 || c >= ds.meta.classes {
                return Err(format!(
                    "class {c} is not a class of {} (0..{})",
                    ds.meta.name,
                    ds.meta.classes - 1
                ));
            }
        }
        let s = split::make(&labels, sc, p.i64("seed", 0)?, p.usize("forget_repeat", 1)?)?;
        let path = job.out_dir.join("split.json");
        std::fs::write(&path, serde_json::to_vec(&s).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut m = Map::new();
        m.insert("forget".into(), json!(s.forget.len()));
        m.insert("remain".into(), json!(s.remain.len()));
        m.insert("sample".into(), json!(s.sample.len()));
        write_metrics(job, &m)
    }
}
