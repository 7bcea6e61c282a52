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

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

/// The branches of OPTML's `RL.py`, which random_label and salun share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// `given`, or by default the branch the reference takes for `dataset`.
    pub fn resolve(given: Option<RelabelPreset>, dataset: &str) -> RelabelPreset {
        given.unwrap_or(if dataset == "cifar100" {
            RelabelPreset::Cifar100
        } else {
            RelabelPreset::Cifar10
        })
    }
}

/// The source line of `preset` for random_label and salun.
pub const RELABEL_PRESET: (&str, &str) = (
    "preset",
    "`RL.py`'s branch by `args.dataset`: cifar100 (and TinyImageNet) vs cifar10 (and SVHN)",
);

/// The description of `preset`'s contextual default.
pub fn relabel_preset_default() -> (&'static str, String) {
    ("preset", "cifar100 on CIFAR-100, else cifar10".into())
}

pub struct RandomLabel;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomLabelParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub remain_fraction: f64,
    pub augment: Option<bool>,
    pub preset: Option<RelabelPreset>,
}

impl Default for RandomLabelParams {
    fn default() -> Self {
        RandomLabelParams {
            optimizer: Optimizer::Sgd,
            lr: 0.01,
            momentum: OPTML.momentum,
            weight_decay: OPTML.weight_decay,
            epochs: 10,
            batch_size: OPTML.batch_size,
            remain_fraction: 1.0,
            augment: None,
            preset: None,
        }
    }
}

impl MethodParams for RandomLabelParams {}

impl Declared for RandomLabel {
    const NAME: &'static str = "random_label";
    // 2: labels redrawn per batch, lr 0.01, batch 256 (v1: drawn once, lr 0.013, batch 32).
    // 3: CIFAR batches augmented as OPTML (`augment`); the CIFAR-100 branch (`preset`).
    const VERSION: u32 = 3;
    type Params = RandomLabelParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/RL.py` (both branches) via `unlearn/impl.py`",
            from: &[
                ("optimizer", "`impl.py`"),
                ("lr", "`--unlearn_lr` default, OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("momentum", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("epochs", "`--unlearn_epochs` default"),
                ("batch_size", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("remain_fraction", "all of Dr"),
                OPTML_AUGMENT,
                RELABEL_PRESET,
            ],
            contextual: vec![augment_default(), relabel_preset_default()],
            deviations: &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Method;
    use super::*;
    use serde_json::{Map, json};

    #[test]
    fn the_preset_follows_the_dataset_unless_named() {
        assert_eq!(
            RelabelPreset::resolve(None, "cifar100"),
            RelabelPreset::Cifar100
        );
        for d in ["cifar10", "fashion_mnist", "mnist", "synthetic"] {
            assert_eq!(RelabelPreset::resolve(None, d), RelabelPreset::Cifar10, "{d}");
        }
        let named: RandomLabelParams = super::super::read(
            json!({"preset": "cifar100"}).as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(
            RelabelPreset::resolve(named.preset, "mnist"),
            RelabelPreset::Cifar100
        );
        let bad: Map<_, _> = json!({"preset": "large"}).as_object().cloned().unwrap();
        assert!(RandomLabel.validate(&bad).is_err());
        assert!(super::super::Salun.validate(&bad).is_err());
        assert!(RandomLabel.validate(json!({"preset": "cifar100"}).as_object().unwrap()).is_ok());
    }
}
