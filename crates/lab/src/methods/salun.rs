//! SalUn (Fan et al., ICLR 2024, "Saliency Unlearning"): a weight saliency mask keeps the top
//! `sparsity` fraction of parameters by |sum over Df batches of the gradient of the batch-mean
//! -CE| (model in eval mode, one global ranking over all parameters); then random-label training
//! (random_label's `preset`s: by default Df with labels redrawn per batch, then Dr; on CIFAR-100
//! Df relabelled per epoch and shuffled with Dr) where gradients outside the mask are
//! zeroed and masked-out weights are restored to their starting values after every step, since
//! weight decay and momentum would otherwise still move them.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/generate_mask.py` (batch 256, top 50%
//! = `with_0.5.pt`), `unlearn/RL.py` with `_apply_mask_to_grads` and `_restore_masked_params`
//! (the restore is in the repository since commit a6e89fd, "Fix weight decay"), the README's
//! `--unlearn RL --unlearn_epochs 10 --unlearn_lr 0.013 --mask_path mask/with_0.5.pt`, and
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. The reference also masks the
//! momentum buffer; here the masked-out weights are reset after every step, which makes that
//! buffer irrelevant to them.

use super::{Method, ParamSpec};
use camu_core::params::ParamError;
use serde_json::{Map, Value};

pub struct Salun;

impl Method for Salun {
    fn name(&self) -> &'static str {
        "salun"
    }
    fn version(&self) -> u32 {
        // 2: labels redrawn per batch, batch 256, saliency from batch-mean losses, mask by rank.
        // 3: CIFAR batches, the mask's included, augmented as OPTML (`augment`); the CIFAR-100
        // branch (`preset`).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/generate_mask.py`, `unlearn/RL.py` (`_apply_mask_to_grads`, `_restore_masked_params`), README",
            defaults: &[
                ("sparsity", "0.5", "README `--mask_path mask/with_0.5.pt`"),
                ("optimizer", "sgd", "`impl.py`"),
                ("lr", "0.013", "README `--unlearn_lr 0.013`"),
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
                ("epochs", "10", "README `--unlearn_epochs 10`"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                ("remain_fraction", "1", "all of Dr"),
                super::OPTML_AUGMENT,
                super::RELABEL_PRESET,
            ],
            deviations: &[
                "The reference also multiplies the momentum buffer by the mask; masked-out weights are reset after every step here, which makes that buffer irrelevant to them.",
            ],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "sparsity",
                "lr",
                "momentum",
                "weight_decay",
                "remain_fraction",
            ],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer", "preset"],
        }
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        super::relabel_preset(params, "")?;
        super::check_spec(self, params)
    }
}
