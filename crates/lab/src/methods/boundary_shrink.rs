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

use super::{Method, ParamSpec};

pub struct BoundaryShrink;

impl Method for BoundaryShrink {
    fn name(&self) -> &'static str {
        "boundary_shrink"
    }
    fn version(&self) -> u32 {
        // 2: target = argmax over all classes, clamped and discretised attack, batch 256, wd 5e-4.
        // 3: OPTML throughout (lr 0.01), targets from each batch as trained (fresh crops each epoch on CIFAR).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/boundary_sh.py` via `unlearn/impl.py`",
            defaults: &[
                ("bound", "0.1", "`bound = 0.1` in `boundary_sh.py`"),
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
            deviations: &[],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["bound", "lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
