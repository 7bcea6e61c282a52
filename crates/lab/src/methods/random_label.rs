//! Random labelling (RL; Golatkar et al. 2020, as the SalUn code base runs it): each epoch, one
//! pass over Df with labels drawn afresh for every batch, uniformly over all classes (the true
//! class included), then one pass over Dr with the true labels; model in train mode.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/RL.py` (the CIFAR-10 branch:
//! `target = torch.randint(0, args.num_classes, target.shape)` inside the forget loop), run
//! through `unlearn/impl.py` with `arg_parser.py`'s defaults: SGD lr 0.01 (`unlearn_lr`),
//! momentum 0.9, weight decay 5e-4, batch 256, 10 epochs. SalUn's lr 0.013 belongs to the masked
//! variant (see `salun.rs`).

use super::{Method, ParamSpec};

pub struct RandomLabel;

impl Method for RandomLabel {
    fn name(&self) -> &'static str {
        "random_label"
    }
    fn version(&self) -> u32 {
        // 2: labels redrawn per batch, lr 0.01, batch 256 (v1: drawn once, lr 0.013, batch 32).
        // 3: CIFAR batches augmented as OPTML (`augment`).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/RL.py` (CIFAR-10 branch) via `unlearn/impl.py`",
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
            ],
            deviations: &[],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
}
