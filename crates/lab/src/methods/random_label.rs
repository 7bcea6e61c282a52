//! Random labelling (RL; Golatkar et al. 2020, as the SalUn code base runs it), model in train
//! mode, labels drawn uniformly over all classes (the true class included). The reference has
//! one branch per dataset, both kept as `preset`s:
//! - `cifar10` (CIFAR-10 and SVHN in the reference; here every dataset but CIFAR-100): each
//!   epoch, one pass over Df with labels drawn afresh for every batch, then one pass over Dr;
//! - `cifar100` (CIFAR-100 and TinyImageNet in the reference; here CIFAR-100): each epoch, new
//!   labels for all of Df at once, then one pass over Df and Dr shuffled together.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/RL.py` (`if args.dataset ==
//! "cifar100" ...`: `np.random.randint` over `forget_dataset.targets`, `ConcatDataset`, one
//! shuffled loader; `elif args.dataset == "cifar10" ...`: `torch.randint` inside the forget
//! loop), run through `unlearn/impl.py` with `arg_parser.py`'s defaults: SGD lr 0.01
//! (`unlearn_lr`), momentum 0.9, weight decay 5e-4, batch 256, 10 epochs. SalUn's lr 0.013
//! belongs to the masked variant (see `salun.rs`).

use super::{Method, ParamSpec};
use camu_core::params::{ParamError, Params};
use serde_json::{Map, Value};

/// The branches of OPTML's `RL.py`, which random_label and salun share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelabelPreset {
    /// Df with labels redrawn per batch, then Dr: two passes per epoch.
    Cifar10,
    /// Df relabelled once per epoch and shuffled into one pass with Dr.
    Cifar100,
}

impl RelabelPreset {
    pub fn name(self) -> &'static str {
        match self {
            RelabelPreset::Cifar10 => "cifar10",
            RelabelPreset::Cifar100 => "cifar100",
        }
    }
}

/// The documentation line of `preset` for random_label and salun (`docs/methods.md`).
pub const RELABEL_PRESET: (&str, &str, &str) = (
    "preset",
    "cifar100 on CIFAR-100, else cifar10",
    "`RL.py`'s branch by `args.dataset`: cifar100 (and TinyImageNet) vs cifar10 (and SVHN)",
);

/// `with.preset`, or by default the branch the reference takes for `dataset`.
pub fn relabel_preset(
    params: &Map<String, Value>,
    dataset: &str,
) -> Result<RelabelPreset, ParamError> {
    let default = if dataset == "cifar100" {
        "cifar100"
    } else {
        "cifar10"
    };
    match Params(params).str("preset", default)? {
        "cifar10" => Ok(RelabelPreset::Cifar10),
        "cifar100" => Ok(RelabelPreset::Cifar100),
        other => Err(format!("unknown preset `{other}` (cifar10, cifar100)").into()),
    }
}

pub struct RandomLabel;

impl Method for RandomLabel {
    fn name(&self) -> &'static str {
        "random_label"
    }
    fn version(&self) -> u32 {
        // 2: labels redrawn per batch, lr 0.01, batch 256 (v1: drawn once, lr 0.013, batch 32).
        // 3: CIFAR batches augmented as OPTML (`augment`); the CIFAR-100 branch (`preset`).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/RL.py` (both branches) via `unlearn/impl.py`",
            defaults: &[
                ("optimizer", "sgd", "`impl.py`"),
                (
                    "lr",
                    "0.01",
                    "`--unlearn_lr` default, OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                (
                    "momentum",
                    "0.9",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                (
                    "weight_decay",
                    "0.0005",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                ("epochs", "10", "`--unlearn_epochs` default"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                ("remain_fraction", "1", "all of Dr"),
                super::OPTML_AUGMENT,
                RELABEL_PRESET,
            ],
            deviations: &[],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            strs: &["optimizer", "preset"],
            ..super::TRAINING_SPEC
        }
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        relabel_preset(params, "")?;
        super::check_spec(self, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_preset_follows_the_dataset_unless_named() {
        let none = Map::new();
        assert_eq!(
            relabel_preset(&none, "cifar100").unwrap(),
            RelabelPreset::Cifar100
        );
        for d in ["cifar10", "fashion_mnist", "mnist", "synthetic"] {
            assert_eq!(
                relabel_preset(&none, d).unwrap(),
                RelabelPreset::Cifar10,
                "{d}"
            );
        }
        let named = json!({"preset": "cifar100"}).as_object().cloned().unwrap();
        assert_eq!(
            relabel_preset(&named, "mnist").unwrap(),
            RelabelPreset::Cifar100
        );
        let bad = json!({"preset": "large"}).as_object().cloned().unwrap();
        assert!(RandomLabel.validate(&bad).is_err());
        assert!(super::super::Salun.validate(&bad).is_err());
        assert!(RandomLabel.validate(&named).is_ok());
    }
}
