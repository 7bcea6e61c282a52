//! Boundary Expanding (Chen et al., CVPR 2023): widen the output layer by one shadow class (its
//! row freshly initialised), train Df toward it in train mode, then remove the shadow neuron, so
//! Df's mass falls on the remaining classes.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_ex.py`
//! (`expand_model`, target `num_classes`), through `unlearn/impl.py`. Every setting comes from
//! that repository: `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256, and its
//! `--unlearn_lr 0.01` and `--unlearn_epochs 10` defaults (its README gives no command for this
//! method); CIFAR batches augmented as its loaders. Deviation: that code keeps the (K+1)-way head
//! and evaluates with it; the paper prunes the shadow neuron after training, as done here, so
//! every method is scored as a K-class model.

use super::{Method, ParamSpec};

pub struct BoundaryExpand;

impl Method for BoundaryExpand {
    fn name(&self) -> &'static str {
        "boundary_expand"
    }
    fn version(&self) -> u32 {
        // 2: batch 256 and weight decay 5e-4 as OPTML (v1: batch 32, no weight decay).
        // 3: OPTML throughout (lr 0.01); CIFAR batches augmented.
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/boundary_ex.py` via `unlearn/impl.py`",
            defaults: &[
                ("optimizer", "sgd", "`impl.py`"),
                (
                    "lr",
                    "0.01",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_lr`; the README gives no command for this method)",
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
                (
                    "epochs",
                    "10",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_epochs`)",
                ),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                super::OPTML_AUGMENT,
            ],
            deviations: &[
                "The shadow neuron is removed after training, as the paper describes; the repository keeps the (K+1)-way head and evaluates with it.",
            ],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
