//! Unlearning methods. Each method is one file: it owns its inner loop and receives a
//! [`Context`]. Adding one means that file plus one line in [`METHODS`].

mod amnesiac;
mod bad_teacher;
mod boundary_expand;
mod boundary_shrink;
mod camu;
pub mod common;
mod finetune;
mod l1_sparse;
mod neggrad;
mod neggrad_plus;
mod random_label;
mod salun;
mod scrub;
mod ssd;
mod unrolling_sgd;
mod unsir;

use crate::data::split::Split;
use crate::data::{Dataset, Family};
use crate::models::Model;
use serde_json::{Map, Value};
use tch::Device;

pub use camu::Camu;

/// Everything a method may use.
pub struct Context<'a> {
    /// f_o, frozen: methods copy it, never modify it.
    pub original: &'a Model,
    pub data: &'a Dataset,
    pub split: &'a Split,
    pub device: Device,
    pub threads: usize,
    pub seed: i64,
    /// The method's own parameters (the stage's `with` without the common keys).
    pub params: &'a Map<String, Value>,
    /// The original model's training record (its `metrics.json`: recipe, epochs, time); empty
    /// when the model came without one.
    pub original_record: &'a Map<String, Value>,
}

impl Context<'_> {
    pub fn family(&self) -> Family {
        self.data.meta.family
    }
    pub fn classes(&self) -> i64 {
        self.data.meta.classes
    }
}

/// What a method returns: the unlearned model and the method's own facts for the record.
pub struct Outcome {
    pub model: Model,
    /// Resolved hyperparameters and anything else worth recording.
    pub details: Map<String, Value>,
}

/// The parameters a method accepts, by type. Floats must not be negative.
pub struct ParamSpec {
    pub floats: &'static [&'static str],
    pub ints: &'static [&'static str],
    pub strs: &'static [&'static str],
}

impl ParamSpec {
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), String> {
        let all: Vec<&str> = self
            .floats
            .iter()
            .chain(self.ints)
            .chain(self.strs)
            .copied()
            .collect();
        crate::params::check_keys(params, &all)?;
        let p = crate::params::Params(params);
        common::non_negative(&p, self.floats)?;
        for k in self.ints {
            p.usize(k, 0)?;
        }
        for k in self.strs {
            p.opt_str(k)?;
        }
        if p.opt_i64("batch_size")? == Some(0) {
            return Err("parameter `batch_size` must be positive".into());
        }
        Ok(())
    }
}

/// The parameters of a plain training-based method: its step settings plus `remain_fraction`.
pub const TRAINING_SPEC: ParamSpec = ParamSpec {
    floats: &["lr", "momentum", "weight_decay", "remain_fraction"],
    ints: &["epochs", "batch_size"],
    strs: &["optimizer"],
};

pub trait Method: Sync {
    fn name(&self) -> &'static str;
    /// Bump when the method's results change; part of the cache key.
    fn version(&self) -> u32;
    /// The parameters the method accepts.
    fn spec(&self) -> ParamSpec;
    /// Checks parameter types and ranges before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        self.spec().check(params)
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String>;
}

pub static METHODS: &[&dyn Method] = &[
    &Camu,
    &finetune::Finetune,
    &neggrad::NegGrad,
    &neggrad_plus::NegGradPlus,
    &random_label::RandomLabel,
    &bad_teacher::BadTeacher,
    &scrub::Scrub,
    &unsir::Unsir,
    &boundary_shrink::BoundaryShrink,
    &boundary_expand::BoundaryExpand,
    &unrolling_sgd::UnrollingSgd,
    &amnesiac::Amnesiac,
    &ssd::Ssd,
    &salun::Salun,
    &l1_sparse::L1Sparse,
];

/// Records resolved hyperparameters in an outcome's details.
pub fn details(v: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hyperparameters".into(), v);
    m
}

pub fn lookup(name: &str) -> Option<&'static dyn Method> {
    METHODS.iter().copied().find(|m| m.name() == name)
}

pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name()).collect()
}
