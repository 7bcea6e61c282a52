//! Boundary Shrink (Chen et al., CVPR 2023, "Boundary Unlearning"; "Boundary" in the CaMU paper):
//! for each Df sample, one FGSM step of size `bound` in pixel space on a frozen copy of f_o (eval
//! mode, CE on the true label), the perturbed image clamped to [0, 1] and rounded to 8-bit levels;
//! its target is f_o's argmax on that image, which stays the true class where the attack fails.
//! The model is then fine-tuned on the clean Df images toward those targets, in train mode.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_sh.py`
//! (`bound = 0.1`, `x_adv = discretize(torch.clamp(x_adv, 0.0, 1.0))`,
//! `adv_label = torch.argmax(test_model(image_adv), dim=1)`), run through `unlearn/impl.py` with
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. That repository recommends
//! no lr or epochs for this method; lr 1e-5 and 10 epochs are the Boundary Unlearning paper's.

use super::{Method, ParamSpec};

pub struct BoundaryShrink;

impl Method for BoundaryShrink {
    fn name(&self) -> &'static str {
        "boundary_shrink"
    }
    fn version(&self) -> u32 {
        // 2: target = argmax over all classes, clamped and discretised attack, batch 256, wd 5e-4.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/unlearn/boundary_sh.py` via `unlearn/impl.py`",
            defaults: &[
                ("bound", "0.1", "`bound = 0.1` in `boundary_sh.py`"),
                ("optimizer", "sgd", "`impl.py`"),
                (
                    "lr",
                    "0.00001",
                    "Boundary Unlearning paper (the repository recommends none)",
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
                ("epochs", "10", "Boundary Unlearning paper"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["bound", "lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
