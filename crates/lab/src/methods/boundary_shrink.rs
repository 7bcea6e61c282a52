//! Boundary Shrink (Chen et al., CVPR 2023, "Boundary Unlearning"; "Boundary" in the CaMU paper):
//! for every Df batch as it is trained, one FGSM step of size `bound` in pixel space on a frozen
//! copy of f_o (eval mode, CE on the true label), the perturbed image clamped to [0, 1] and
//! rounded to 8-bit levels; the batch's targets are f_o's argmax on those images, which stays the
//! true class where the attack fails. The model takes one step toward them on the clean batch, in
//! train mode. On CIFAR the batch is a fresh random crop and flip each epoch, so the targets are
//! recomputed every epoch, as the reference's loop does.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_sh.py`
//! (`bound = 0.1`, `x_adv = discretize(torch.clamp(x_adv, 0.0, 1.0))`,
//! `adv_label = torch.argmax(test_model(image_adv), dim=1)` inside the batch loop), run through
//! `unlearn/impl.py`. Every setting comes from that repository: `arg_parser.py`'s SGD momentum
//! 0.9, weight decay 5e-4, batch 256, and its `--unlearn_lr 0.01` and `--unlearn_epochs 10`
//! defaults (its README gives no command for this method). The original authors' code (lr 1e-5,
//! batch 64, no weight decay, distributed as an archive, not a repository with commits) is not
//! mixed in.

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

pub struct BoundaryShrink;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoundaryShrinkParams {
    pub bound: f64,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub augment: Option<bool>,
}

impl Default for BoundaryShrinkParams {
    fn default() -> Self {
        BoundaryShrinkParams {
            bound: 0.1,
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

impl MethodParams for BoundaryShrinkParams {}

impl Declared for BoundaryShrink {
    const NAME: &'static str = "boundary_shrink";
    // 2: target = argmax over all classes, clamped and discretised attack, batch 256, wd 5e-4.
    // 3: OPTML throughout (lr 0.01), targets from each batch as trained (fresh crops each epoch on CIFAR).
    const VERSION: u32 = 3;
    type Params = BoundaryShrinkParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/boundary_sh.py` via `unlearn/impl.py`",
            from: &[
                ("bound", "`bound = 0.1` in `boundary_sh.py`"),
                ("optimizer", "`impl.py`"),
                ("lr", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_lr`; the README gives no command for this method)"),
                ("momentum", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("epochs", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py` (`--unlearn_epochs`)"),
                ("batch_size", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                OPTML_AUGMENT,
            ],
            contextual: vec![augment_default()],
            deviations: &[],
        }
    }
}
