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

use super::{
    Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, RELABEL_PRESET, Reference, RelabelPreset,
    augment_default, relabel_preset_default,
};
use camu_core::params::ParamError;
use serde::{Deserialize, Serialize};

pub struct Salun;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SalunParams {
    /// The fraction of weights the mask keeps trainable.
    pub sparsity: f64,
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

impl Default for SalunParams {
    fn default() -> Self {
        SalunParams {
            sparsity: 0.5,
            optimizer: Optimizer::Sgd,
            lr: 0.013,
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

impl MethodParams for SalunParams {
    fn check(&self) -> Result<(), ParamError> {
        if self.sparsity > 1.0 {
            return Err(ParamError::Range {
                key: "sparsity".into(),
                rule: "be in [0, 1]",
            });
        }
        Ok(())
    }
}

impl Declared for Salun {
    const NAME: &'static str = "salun";
    // 2: labels redrawn per batch, batch 256, saliency from batch-mean losses, mask by rank.
    // 3: CIFAR batches, the mask's included, augmented as OPTML (`augment`); the CIFAR-100
    // branch (`preset`).
    const VERSION: u32 = 3;
    type Params = SalunParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Saliency at a6e89fd: `Classification/generate_mask.py`, `unlearn/RL.py` (`_apply_mask_to_grads`, `_restore_masked_params`), README",
            from: &[
                ("sparsity", "README `--mask_path mask/with_0.5.pt`"),
                ("optimizer", "`impl.py`"),
                ("lr", "README `--unlearn_lr 0.013`"),
                ("momentum", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("epochs", "README `--unlearn_epochs 10`"),
                ("batch_size", "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`"),
                ("remain_fraction", "all of Dr"),
                OPTML_AUGMENT,
                RELABEL_PRESET,
            ],
            contextual: vec![augment_default(), relabel_preset_default()],
            deviations: &[
                "The reference also multiplies the momentum buffer by the mask; masked-out weights are reset after every step here, which makes that buffer irrelevant to them.",
            ],
        }
    }
}
