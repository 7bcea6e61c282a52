//! `split`: the forget / remain / sample index lists of one seed, saved as split.json.

use crate::protocol::Scenario;
use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::{Kind, Requirement};
use serde_json::{Map, Value};

pub struct SplitKind;

const PARAMS: &[&str] = &[
    "scenario",
    "fraction",
    "classes",
    "proportions",
    "seed",
    "forget_repeat",
    "validation",
    "validation_seed",
];

/// The scenario the parameters describe.
pub fn scenario(p: &Params) -> Result<Scenario, ParamError> {
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
                    .ok_or_else(|| ParamError::Required {
                        key: "proportions".into(),
                    })?;
            let mut m = std::collections::BTreeMap::new();
            for (k, v) in props {
                let c: i64 = k.parse().map_err(|_| ParamError::Type {
                    key: format!("proportions.{k}"),
                    want: "a key that is a class number",
                    got: k.clone(),
                })?;
                m.insert(
                    c,
                    v.as_f64().ok_or_else(|| ParamError::Type {
                        key: format!("proportions.{k}"),
                        want: "a number",
                        got: v.to_string(),
                    })?,
                );
            }
            Ok(Scenario::PerClass { proportions: m })
        }
        other => Err(ParamError::UnknownValue {
            what: "scenario",
            value: other.to_string(),
            known: "random, class, per_class".into(),
        }),
    }
}

impl Kind for SplitKind {
    fn name(&self) -> &'static str {
        "split"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        scenario(&p)?;
        p.i64("seed", 0)?;
        if p.usize("forget_repeat", 1)? == 0 {
            return Err(ParamError::Range {
                key: "forget_repeat".into(),
                rule: "be at least 1",
            });
        }
        p.i64("validation_seed", 0)?;
        let v = p.f64("validation", 0.0)?;
        if !(0.0..1.0).contains(&v) {
            return Err(ParamError::Range {
                key: "validation".into(),
                rule: "be in [0, 1)",
            });
        }
        Ok(())
    }
    fn provides(&self) -> &'static [&'static str] {
        &["split.json"]
    }
    fn requires(&self, _params: &Map<String, Value>) -> Vec<Requirement> {
        vec![Requirement::any("dataset.json")]
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
