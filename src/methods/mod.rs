//! Unlearning methods. Each method is one file: it owns its inner loop and receives a
//! [`Context`]. Adding one means that file plus one line in [`METHODS`].

mod camu;

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

pub trait Method: Sync {
    fn name(&self) -> &'static str;
    /// Bump when the method's results change; part of the cache key.
    fn version(&self) -> u32;
    /// Parameter names the method accepts.
    fn params(&self) -> &'static [&'static str];
    /// Checks parameter types and ranges before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String>;
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String>;
}

pub static METHODS: &[&dyn Method] = &[&Camu];

pub fn lookup(name: &str) -> Option<&'static dyn Method> {
    METHODS.iter().copied().find(|m| m.name() == name)
}

pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name()).collect()
}
