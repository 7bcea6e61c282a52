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

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

pub struct BoundaryExpand;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoundaryExpandParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub augment: Option<bool>,
}

impl Default for BoundaryExpandParams {
    fn default() -> Self {
        BoundaryExpandParams {
            optimizer: Optimizer::Sgd,
            lr: 0.01,
            momentum: OPTML.momentum,
            weight_decay: OPTML.weight_decay,
            epochs: 10,
            batch_size: OPTML.batch_size,
            augment: None,
        }
    }
}

impl MethodParams for BoundaryExpandParams {}

impl Declared for BoundaryExpand {
    const NAME: &'static str = "boundary_expand";
    // 2: batch 256 and weight decay 5e-4 as OPTML (v1: batch 32, no weight decay).
    // 3: OPTML throughout (lr 0.01); CIFAR batches augmented.
    const VERSION: u32 = 3;
    type Params = BoundaryExpandParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/boundary_ex.py` via `unlearn/impl.py`",
            from: &[
                ("optimizer", "`impl.py`"),
                ("lr", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_lr`; the README gives no command for this method)"),
                ("momentum", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("epochs", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_epochs`)"),
                ("batch_size", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                OPTML_AUGMENT,
            ],
            contextual: vec![augment_default()],
            deviations: &[
                "The shadow neuron is removed after training, as the paper describes; the repository keeps the (K+1)-way head and evaluates with it.",
            ],
        }
    }
}
