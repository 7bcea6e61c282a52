//! The unlearning methods as the planner sees them: name, version, parameters and the source of
//! every default. Each method's computation is in `camu_torch::methods`, one file per method with
//! the same name as here.

mod amnesiac;
mod bad_teacher;
mod boundary_expand;
mod boundary_shrink;
mod camu;
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

pub use amnesiac::Amnesiac;
pub use bad_teacher::BadTeacher;
pub use boundary_expand::BoundaryExpand;
pub use boundary_shrink::BoundaryShrink;
pub use camu::Camu;
pub use finetune::Finetune;
pub use l1_sparse::L1Sparse;
pub use neggrad::NegGrad;
pub use neggrad_plus::{
    NEGGRAD_PLUS_LARGE, NEGGRAD_PLUS_SMALL, NegGradPlus, NegGradPlusPreset, neggrad_plus_preset,
};
pub use random_label::{RELABEL_PRESET, RandomLabel, RelabelPreset, relabel_preset};
pub use salun::Salun;
pub use scrub::{SCRUB_LARGE, SCRUB_SMALL, Scrub, ScrubPreset, scrub_preset};
pub use ssd::Ssd;
pub use unrolling_sgd::UnrollingSgd;
pub use unsir::Unsir;

use camu_core::params::{ParamError, Params, check_keys};
use serde_json::{Map, Value};

/// The parameters a method accepts, by type. Floats must not be negative.
pub struct ParamSpec {
    pub floats: &'static [&'static str],
    pub ints: &'static [&'static str],
    pub strs: &'static [&'static str],
}

impl ParamSpec {
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        let all: Vec<&str> = self
            .floats
            .iter()
            .chain(self.ints)
            .chain(self.strs)
            .copied()
            .collect();
        check_keys(params, &all)?;
        let p = Params(params);
        p.non_negative(self.floats)?;
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

/// Where a method's defaults come from, for `docs/methods.md` (`camu-pipe methods`).
pub struct Reference {
    /// The repository and files the defaults were read in.
    pub source: &'static str,
    /// (parameter, default, where in the source it comes from).
    pub defaults: &'static [(&'static str, &'static str, &'static str)],
    /// Where camu-pipe deliberately differs from the source, and why.
    pub deviations: &'static [&'static str],
}

pub trait Method: Sync {
    fn name(&self) -> &'static str;
    /// Bump when the method's results change; part of the cache key.
    fn version(&self) -> u32;
    /// The source of every default.
    fn reference(&self) -> Reference;
    /// The parameters the method accepts.
    fn spec(&self) -> ParamSpec;
    /// Whether the reference trains this method's batches with the dataset's training transform
    /// (for CIFAR, RandomCrop(32, 4) and a horizontal flip), so that the method accepts the
    /// boolean `augment`, on by default for CIFAR and off for the MNIST family (which the
    /// references never augment).
    fn augments(&self) -> bool {
        false
    }
    /// Checks parameter types and ranges before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_spec(self, params)
    }
}

/// The checks every method makes: [`Method::spec`], and `augment` where [`Method::augments`].
pub fn check_spec<M: Method + ?Sized>(
    m: &M,
    params: &Map<String, Value>,
) -> Result<(), ParamError> {
    if m.augments() && params.contains_key(AUGMENT) {
        Params(params).bool(AUGMENT, false)?;
        let mut rest = params.clone();
        rest.remove(AUGMENT);
        return m.spec().check(&rest);
    }
    m.spec().check(params)
}

/// The parameter of the methods that [`Method::augments`].
pub const AUGMENT: &str = "augment";

/// The documentation line of `augment` for the OPTML-derived methods (`docs/methods.md`).
pub const OPTML_AUGMENT: (&str, &str, &str) = (
    AUGMENT,
    "CIFAR: true; MNIST family: false",
    "OPTML's CIFAR loaders (`dataset.py`): the forget and retained sets keep the training set's RandomCrop(32, 4) and RandomHorizontalFlip",
);

pub static METHODS: &[&dyn Method] = &[
    &Camu,
    &Finetune,
    &NegGrad,
    &NegGradPlus,
    &RandomLabel,
    &BadTeacher,
    &Scrub,
    &Unsir,
    &BoundaryShrink,
    &BoundaryExpand,
    &UnrollingSgd,
    &Amnesiac,
    &Ssd,
    &Salun,
    &L1Sparse,
];

pub fn lookup(name: &str) -> Option<&'static dyn Method> {
    METHODS.iter().copied().find(|m| m.name() == name)
}

pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name()).collect()
}

/// The provenance of every method's defaults as Markdown: the text of `docs/methods.md`.
pub fn provenance_markdown() -> String {
    let mut out = String::from(
        "# Method defaults and their sources\n\n\
         Generated by `camu-pipe methods` from each method's `reference()` (crates/lab/src/methods/); a test \
         keeps this file and the code in step, and another runs every method and checks that the \
         hyperparameters it records are these defaults. Every default can be overridden in a \
         stage's `with`. Each source names the commit of the repository its defaults were read at; \
         where a repository has one configuration per data scale, `preset` chooses it and the \
         default is the one for full datasets, camu-pipe's protocol.\n",
    );
    for m in METHODS {
        let r = m.reference();
        out.push_str(&format!(
            "\n## {} (version {})\n\nSource: {}.\n\n| parameter | default | from |\n|---|---|---|\n",
            m.name(),
            m.version(),
            r.source
        ));
        for (k, v, src) in r.defaults {
            out.push_str(&format!("| `{k}` | {v} | {src} |\n"));
        }
        if !r.deviations.is_empty() {
            out.push_str("\nDeliberate differences:\n\n");
            for d in r.deviations {
                out.push_str(&format!("- {d}\n"));
            }
        }
    }
    out
}
