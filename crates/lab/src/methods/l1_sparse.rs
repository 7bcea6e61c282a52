//! l1-sparse unlearning (Jia et al., NeurIPS 2023, "Model Sparsity Can Simplify Machine
//! Unlearning"): fine-tune on Dr with CE + alpha_e * ||w||_1 (all parameters, not normalised),
//! alpha_e = alpha * (1 - e / E) for epoch e = 0..E-1: it decays linearly per epoch and is still
//! alpha / E in the last epoch.
//!
//! Reference: OPTML-Group/Unlearn-Sparse `unlearn/FT.py` (`FT_l1`, which `FT_prune` calls;
//! `current_alpha = args.alpha * (1 - epoch / (args.unlearn_epochs - args.no_l1_epochs))` with
//! `no_l1_epochs` 0), the README's `--unlearn FT_prune --unlearn_lr 0.01 --unlearn_epochs 10`,
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. The README leaves alpha
//! open (`${alpha}`; the parser's generic default is 0.2); 5e-4 is the paper's value for
//! l1-sparse unlearning.

use super::{Method, ParamSpec};

pub struct L1Sparse;

impl Method for L1Sparse {
    fn name(&self) -> &'static str {
        "l1_sparse"
    }
    fn version(&self) -> u32 {
        // 2: alpha decays per epoch (v1: per step, to 0); batch 256.
        // 3: CIFAR batches augmented as OPTML (`augment`).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/FT.py` (`FT_l1`, called by `FT_prune`); README command for l1-sparse",
            defaults: &[
                (
                    "alpha",
                    "0.0005",
                    "the paper's gamma (the README leaves `${alpha}` open)",
                ),
                ("optimizer", "sgd", "`impl.py`"),
                ("lr", "0.01", "README `--unlearn_lr 0.01`"),
                (
                    "momentum",
                    "0.9",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                (
                    "weight_decay",
                    "0.0005",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                ("epochs", "10", "README `--unlearn_epochs 10`"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
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
        ParamSpec {
            floats: &["alpha", "lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
