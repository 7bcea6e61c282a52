//! The unlearning methods' computations. Each file implements [`Compute`] for the method of the
//! same name declared in `camu_lab::methods`, owns its inner loop and receives a [`Context`] and
//! its parameter struct.

pub mod common;

macro_rules! computations {
    ($($module:ident::$ty:ident),* $(,)?) => {
        $(mod $module;)*
        /// Every declared method's computation, in the declaration's order.
        static IMPLS: &[&dyn Run] = &[$(&camu_lab::methods::$ty),*];
    };
}

camu_lab::for_each_method!(computations);

use crate::data::split::Split;
use crate::data::{Dataset, Family};
use crate::models::Model;
pub use camu_lab::methods::{Declared, Method, Reference};
use serde_json::{Map, Value};
pub use ssd::retained_order as ssd_retained_order;
use tch::Device;
pub use unsir::retained_subset as unsir_retained_subset;

/// Everything a method may use.
pub struct Context<'a> {
    /// f_o, frozen: methods copy it, never modify it.
    pub original: &'a Model,
    pub data: &'a Dataset,
    pub split: &'a Split,
    pub device: Device,
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
    /// Whether training batches get the dataset's training augmentation: `given` (a method's
    /// `augment`), else on for CIFAR.
    pub fn augment(&self, given: Option<bool>) -> bool {
        camu_lab::methods::augment(given, self.family())
    }
    /// The split's scenario is a random removal.
    pub fn random_removal(&self) -> bool {
        self.split.scenario.family() == "random"
    }
}

/// What a method returns: the unlearned model and the method's own facts for the record.
pub struct Outcome {
    pub model: Model,
    /// Resolved hyperparameters and anything else worth recording.
    pub details: Map<String, Value>,
}

/// A method's computation. Its declaration (name, version, parameter struct, sources) is
/// [`Declared`] in `camu_lab::methods`; the run receives the parameters read into its struct.
pub trait Compute: Declared {
    fn unlearn(&self, ctx: &Context<'_>, p: Self::Params) -> Result<Outcome, crate::MlError>;
}

/// A method run by name: reads `ctx.params` into the method's struct, then computes.
pub trait Run: Method {
    fn run(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError>;
}

impl<T: Compute> Run for T {
    fn run(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let p = camu_lab::methods::read::<T::Params>(ctx.params).map_err(|e| {
            camu_core::params::ParamError::Method {
                method: T::NAME.to_string(),
                source: Box::new(e),
            }
        })?;
        self.unlearn(ctx, p)
    }
}

/// The record of a run: the parameters as resolved (every field, context-dependent ones filled
/// in by the computation), then `extra`, the method's own facts, as `hyperparameters`.
pub fn details(p: &impl serde::Serialize, extra: Value) -> Map<String, Value> {
    let mut h = match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Value::Object(e) = extra {
        h.extend(e);
    }
    let mut m = Map::new();
    m.insert("hyperparameters".into(), Value::Object(h));
    m
}

/// The implementation of a declared method.
pub fn lookup(name: &str) -> Option<&'static dyn Run> {
    IMPLS.iter().copied().find(|m| m.name() == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declared_method_has_one_implementation() {
        let declared = camu_lab::methods::names();
        let implemented: Vec<&str> = super::IMPLS.iter().map(|m| m.name()).collect();
        assert_eq!(declared, implemented);
    }
}
