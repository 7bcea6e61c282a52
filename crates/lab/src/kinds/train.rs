//! `train`: the original model (on D) or the retrained baseline (`on: remain`, on Dr only, from a
//! fresh initialisation), with the reference recipe.

use crate::protocol::Arch;
use camu_core::params::{ParamError, Params, parse};
use camu_core::spec::{Kind, Requirement};
use serde::Deserialize;
use serde_json::{Map, Value};

pub struct Train;

/// The reference recipe (`train.py`): Adam, lr 1e-3, weight decay 1e-4, batch 32, 20 epochs.
pub const EPOCHS: usize = 20;
pub const BATCH_SIZE: usize = 32;
pub const LR: f64 = 1e-3;
pub const WEIGHT_DECAY: f64 = 1e-4;

/// What the model is trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    /// All of D: the original model.
    #[default]
    Full,
    /// Dr only, from a fresh initialisation: the retrained baseline.
    Remain,
}

impl On {
    pub fn name(self) -> &'static str {
        match self {
            On::Full => "full",
            On::Remain => "remain",
        }
    }
}

/// `train`'s parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    #[serde(default)]
    pub on: On,
    #[serde(default = "epochs")]
    pub epochs: usize,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    #[serde(default = "lr")]
    pub lr: f64,
    #[serde(default = "weight_decay")]
    pub weight_decay: f64,
    #[serde(default)]
    pub seed: i64,
    /// `auto`: the reference's model for the dataset's family.
    #[serde(default = "auto")]
    pub arch: String,
    /// Default: the reference augments CIFAR training only.
    pub augment: Option<bool>,
    #[serde(default = "auto")]
    pub device: String,
    /// The input whose split.json gives Dr (`on: remain`); default: the only one.
    pub split: Option<String>,
}

fn epochs() -> usize {
    EPOCHS
}
fn batch_size() -> usize {
    BATCH_SIZE
}
fn lr() -> f64 {
    LR
}
fn weight_decay() -> f64 {
    WEIGHT_DECAY
}
fn auto() -> String {
    "auto".into()
}

impl TrainParams {
    /// Reads and checks `with`: what validation and the run both use.
    pub fn read(params: &Map<String, Value>) -> Result<TrainParams, ParamError> {
        let t: TrainParams = parse(params)?;
        if t.batch_size == 0 {
            return Err(ParamError::Range {
                key: "batch_size".into(),
                rule: "be at least 1",
            });
        }
        Params(params).non_negative(&["lr", "weight_decay"])?;
        if t.arch != "auto" {
            Arch::parse(&t.arch)?;
        }
        Ok(t)
    }
}

impl Kind for Train {
    fn name(&self) -> &'static str {
        "train"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        TrainParams::read(params).map(|_| ())
    }
    fn provides(&self) -> &'static [&'static str] {
        &["model.safetensors"]
    }
    fn requires(&self, params: &Map<String, Value>) -> Vec<Requirement> {
        let mut r = vec![Requirement::any("dataset.json")];
        if TrainParams::read(params).is_ok_and(|p| p.on == On::Remain) {
            r.push(Requirement::named_by("split.json", "split", params));
        }
        r
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
