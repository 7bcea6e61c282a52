//! The experiment protocol's vocabulary: datasets, their families, model architectures, and how
//! the forget set is chosen. Plain data, shared by validation (here) and the runs (camu-torch).

use camu_core::params::ParamError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The datasets camu-pipe knows.
pub const DATASETS: &[&str] = &["mnist", "fashion_mnist", "cifar10", "cifar100", "synthetic"];

/// Which protocol family a dataset belongs to (it picks models and reference hyperparameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// MNIST, Fashion-MNIST and the synthetic set: 1 x 28 x 28, the reference CNN.
    Mnist,
    /// CIFAR-10/100: 3 x 32 x 32, ResNet-18.
    Cifar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Conv(1->16,k5,p2) ReLU MaxPool2, Conv(16->32,k5,p2) ReLU MaxPool2, fc1 1568->256 (the
    /// embedding), Linear 256->128, Linear 128->K.
    Cnn,
    /// torchvision-style ResNet-18 with the ImageNet stem; inputs resized to 224x224.
    Resnet18,
    /// ResNet-18 with a 3x3 stride-1 stem and no max-pool, on 32x32 inputs.
    Resnet18Cifar,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch, ParamError> {
        match s {
            "cnn" => Ok(Arch::Cnn),
            "resnet18" => Ok(Arch::Resnet18),
            "resnet18_cifar" => Ok(Arch::Resnet18Cifar),
            other => Err(ParamError::UnknownValue {
                what: "arch",
                value: other.to_string(),
                known: "cnn, resnet18, resnet18_cifar".into(),
            }),
        }
    }
    /// The reference's model for a dataset family.
    pub fn default_for(family: Family) -> Arch {
        match family {
            Family::Mnist => Arch::Cnn,
            Family::Cifar => Arch::Resnet18,
        }
    }
}

/// How Df is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Scenario {
    /// A uniformly random fraction of D (reference: 10%).
    Random { fraction: f64 },
    /// Every sample of the listed classes (reference: class 0).
    Class { classes: Vec<i64> },
    /// A fraction of each listed class.
    PerClass { proportions: BTreeMap<i64, f64> },
}

impl Scenario {
    /// `random` or `class`: the key of the reference hyperparameter table.
    pub fn family(&self) -> &'static str {
        match self {
            Scenario::Random { .. } => "random",
            Scenario::Class { .. } | Scenario::PerClass { .. } => "class",
        }
    }
    /// Classes whose test accuracy measures forgetting (empty for random forgetting).
    pub fn forgotten_classes(&self) -> Vec<i64> {
        match self {
            Scenario::Random { .. } => vec![],
            Scenario::Class { classes } => classes.clone(),
            Scenario::PerClass { proportions } => proportions.keys().copied().collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Split {
    #[serde(flatten)]
    pub scenario: Scenario,
    pub seed: i64,
    /// Df: indices into the training set.
    pub forget: Vec<i64>,
    /// Dr = D \ Df.
    pub remain: Vec<i64>,
    /// Ds: a random subset of Dr with |Ds| = |Df| x forget_repeat.
    pub sample: Vec<i64>,
    /// How many times methods repeat Df (the reference repeats CIFAR-100's 500-item class 10x).
    pub forget_repeat: usize,
    /// Indices into the test set held out for choosing settings (`select`): evaluations with
    /// `on: validation` use these, the others use the rest of the test set. Absent in the
    /// reference protocol, where every evaluation uses the whole test set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Vec<i64>>,
}

/// Which test samples an evaluation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalOn {
    /// The test set without the validation part (all of it when the split has none).
    Test,
    /// The validation part only.
    Validation,
}

/// An evaluation on the validation part of a split without one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "`on: validation` needs a split with a validation part (`validation: FRACTION` on the split stage)"
)]
pub struct NoValidationPart;

impl Split {
    /// The test-set indices an evaluation on `on` uses: `None` for the whole test set.
    pub fn test_indices(
        &self,
        on: EvalOn,
        n_test: i64,
    ) -> Result<Option<Vec<i64>>, NoValidationPart> {
        match (on, &self.validation) {
            (EvalOn::Test, None) => Ok(None),
            (EvalOn::Test, Some(v)) => {
                let held: std::collections::HashSet<i64> = v.iter().copied().collect();
                Ok(Some((0..n_test).filter(|i| !held.contains(i)).collect()))
            }
            (EvalOn::Validation, Some(v)) => Ok(Some(v.clone())),
            (EvalOn::Validation, None) => Err(NoValidationPart),
        }
    }
}

/// Resolves `arch: auto` for a dataset family.
pub fn arch(spec: &str, family: Family) -> Result<Arch, ParamError> {
    if spec == "auto" {
        Ok(Arch::default_for(family))
    } else {
        Arch::parse(spec)
    }
}
