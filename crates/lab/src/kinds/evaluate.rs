//! `evaluate`: every metric of one model on one split, next to the retrained model when given.

use camu_core::params::{ParamError, Params, parse};
use camu_core::spec::{Kind, Requirement};
use serde::Deserialize;
use serde_json::{Map, Value};

pub struct Evaluate;

/// `evaluate`'s parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// The input holding the model to evaluate; default: the only one with a model.
    pub model: Option<String>,
    /// The retrained model the distances are measured to.
    pub reference: Option<String>,
    pub split: Option<String>,
    #[serde(default = "yes")]
    pub mia: bool,
    /// Samples per side to train the reference attack (reference: about 4,000).
    #[serde(default = "mia_samples")]
    pub mia_samples: usize,
    /// Write the attack's fit and evaluation sets (`mia_fit.csv`, `mia_eval.csv`).
    #[serde(default)]
    pub mia_export: bool,
    /// Also record the accuracy per class on the test set, Df and Dr (`acc_*_per_class`), for
    /// the report's per-class view. Off by default, so existing evaluations keep their keys.
    #[serde(default)]
    pub per_class: bool,
    /// Also record each layer's linear CKA between the model and `reference` on the first
    /// `cka_samples` test images (`cka_to_retrain`), for the report's layer-wise view. Off by
    /// default, so existing evaluations keep their keys.
    #[serde(default)]
    pub cka: bool,
    #[serde(default = "cka_samples")]
    pub cka_samples: usize,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    #[serde(default = "auto")]
    pub device: String,
    #[serde(default)]
    pub seed: i64,
    /// The original model (its Df loss is relearning's target).
    pub original: Option<String>,
    #[serde(default)]
    pub relearn: bool,
    #[serde(default = "relearn_samples")]
    pub relearn_samples: usize,
    #[serde(default = "relearn_lr")]
    pub relearn_lr: f64,
    #[serde(default = "relearn_batch_size")]
    pub relearn_batch_size: usize,
    #[serde(default = "relearn_max_epochs")]
    pub relearn_max_epochs: usize,
    /// `validation`: score on the split's validation part (for `select`); `test` (default): on
    /// the rest of the test set, or all of it when the split has no validation part.
    #[serde(default = "test")]
    pub on: crate::protocol::EvalOn,
}

fn test() -> crate::protocol::EvalOn {
    crate::protocol::EvalOn::Test
}

fn yes() -> bool {
    true
}
fn mia_samples() -> usize {
    4000
}
/// 512 probe images: the Gram matrices stay 512 x 512 whatever the width of the layer.
fn cka_samples() -> usize {
    512
}
fn batch_size() -> usize {
    512
}
fn auto() -> String {
    "auto".into()
}
fn relearn_samples() -> usize {
    1000
}
fn relearn_lr() -> f64 {
    0.1
}
fn relearn_batch_size() -> usize {
    32
}
fn relearn_max_epochs() -> usize {
    100
}

impl EvaluateParams {
    /// Reads and checks `with`: what validation and the run both use.
    pub fn read(params: &Map<String, Value>) -> Result<EvaluateParams, ParamError> {
        let e: EvaluateParams = parse(params)?;
        if e.relearn && e.original.is_none() {
            return Err(ParamError::Invalid("`relearn: true` needs `original: STAGE` (the original model's Df loss is the target)".into()));
        }
        if e.cka && e.reference.is_none() {
            return Err(ParamError::Invalid("`cka: true` needs `reference: STAGE` (the retrained model each layer is compared with)".into()));
        }
        if e.cka_samples < 2 {
            return Err(ParamError::Range {
                key: "cka_samples".into(),
                rule: "be at least 2",
            });
        }
        for (key, v) in [
            ("batch_size", e.batch_size),
            ("relearn_batch_size", e.relearn_batch_size),
        ] {
            if v == 0 {
                return Err(ParamError::Range {
                    key: key.into(),
                    rule: "be at least 1",
                });
            }
        }
        Params(params).non_negative(&["relearn_lr"])?;
        Ok(e)
    }
}

impl Kind for Evaluate {
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self, params: &Map<String, Value>) -> u32 {
        // 2: diverged models recorded as such; the XGBoost-semantics attack on the 99% fit split;
        // provenance of every input.
        // 3: the reference MIA on balanced sets when the test set is too small for its recipe (a
        // split with a validation part). 4: the attack's trees take gains and probabilities in
        // f32 as XGBoost does. Evaluations without the MIA keep version 2.
        match EvaluateParams::read(params) {
            Ok(p) if !p.mia => 2,
            _ => 4,
        }
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        EvaluateParams::read(params).map(|_| ())
    }
    fn provides(&self) -> &'static [&'static str] {
        &["metrics.json"]
    }
    /// `on: validation` needs a split with a validation part.
    fn check_needs<'a>(
        &self,
        stage: &'a camu_core::spec::Stage,
        need: &dyn Fn(&str) -> Option<&'a camu_core::spec::Stage>,
    ) -> Vec<String> {
        if stage.params.get("on").and_then(Value::as_str) != Some("validation") {
            return Vec::new();
        }
        let named = stage.params.get("split").and_then(Value::as_str);
        let splits: Vec<&camu_core::spec::Stage> = stage
            .needs
            .iter()
            .filter_map(|n| need(n))
            .filter(|n| n.kind == "split")
            .filter(|n| named.is_none_or(|x| n.name == x || n.base == x))
            .collect();
        match splits.as_slice() {
            [s] if !s
                .params
                .get("validation")
                .and_then(Value::as_f64)
                .is_some_and(|f| f > 0.0) =>
            {
                vec![format!(
                    "evaluates `on: validation`, but its split `{}` has no validation part (give the split `validation: FRACTION`)",
                    s.name
                )]
            }
            _ => Vec::new(),
        }
    }
    fn requires(&self, params: &Map<String, Value>) -> Vec<Requirement> {
        let mut r = vec![
            Requirement::any("dataset.json"),
            Requirement::named_by("split.json", "split", params),
            Requirement::named_by("model.safetensors", "model", params),
        ];
        if let Ok(p) = EvaluateParams::read(params) {
            if p.reference.is_some() {
                r.push(Requirement::named_by(
                    "model.safetensors",
                    "reference",
                    params,
                ));
            }
            if p.relearn {
                r.push(Requirement::named_by(
                    "model.safetensors",
                    "original",
                    params,
                ));
            }
        }
        r
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
