//! The unlearning methods' computations. Each file implements [`Unlearn`] for the method of the
//! same name declared in `camu_lab::methods`, owns its inner loop and receives a [`Context`].

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
pub use camu_lab::methods::{Method, ParamSpec, Reference};
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
    /// Whether training batches get the dataset's training augmentation: parameter `augment`,
    /// on by default for CIFAR. Only methods whose reference augments
    /// ([`Method::augments`]) call this.
    pub fn augment(&self) -> Result<bool, crate::MlError> {
        let default = self.family() == Family::Cifar;
        Ok(camu_core::params::Params(self.params).bool(camu_lab::methods::AUGMENT, default)?)
    }
}

/// What a method returns: the unlearned model and the method's own facts for the record.
pub struct Outcome {
    pub model: Model,
    /// Resolved hyperparameters and anything else worth recording.
    pub details: Map<String, Value>,
}

/// A method's computation. Its declaration (name, version, parameters, defaults) is
/// `camu_lab::methods::Method`; every declared method has exactly one implementation here.
pub trait Unlearn: Method {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError>;
}

static IMPLS: &[&dyn Unlearn] = &[
    &camu_lab::methods::Camu,
    &camu_lab::methods::Finetune,
    &camu_lab::methods::NegGrad,
    &camu_lab::methods::NegGradPlus,
    &camu_lab::methods::RandomLabel,
    &camu_lab::methods::BadTeacher,
    &camu_lab::methods::Scrub,
    &camu_lab::methods::Unsir,
    &camu_lab::methods::BoundaryShrink,
    &camu_lab::methods::BoundaryExpand,
    &camu_lab::methods::UnrollingSgd,
    &camu_lab::methods::Amnesiac,
    &camu_lab::methods::Ssd,
    &camu_lab::methods::Salun,
    &camu_lab::methods::L1Sparse,
];

/// Records resolved hyperparameters in an outcome's details.
pub fn details(v: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("hyperparameters".into(), v);
    m
}

/// The implementation of a declared method.
pub fn lookup(name: &str) -> Option<&'static dyn Unlearn> {
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
