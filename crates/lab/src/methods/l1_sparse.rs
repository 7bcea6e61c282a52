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

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

pub struct L1Sparse;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L1SparseParams {
    pub alpha: f64,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub remain_fraction: f64,
    pub augment: Option<bool>,
}

impl Default for L1SparseParams {
    fn default() -> Self {
        L1SparseParams {
            alpha: 5e-4,
            optimizer: Optimizer::Sgd,
            lr: 0.01,
            momentum: OPTML.momentum,
            weight_decay: OPTML.weight_decay,
            epochs: 10,
            batch_size: OPTML.batch_size,
            remain_fraction: 1.0,
            augment: None,
        }
    }
}

impl MethodParams for L1SparseParams {}

impl Declared for L1Sparse {
    const NAME: &'static str = "l1_sparse";
    // 2: alpha decays per epoch (v1: per step, to 0); batch 256.
    // 3: CIFAR batches augmented as OPTML (`augment`).
    const VERSION: u32 = 3;
    type Params = L1SparseParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/FT.py` (`FT_l1`, called by `FT_prune`); README command for l1-sparse",
            from: &[
                ("alpha", "the paper's gamma (the README leaves `${alpha}` open)"),
                ("optimizer", "`impl.py`"),
                ("lr", "README `--unlearn_lr 0.01`"),
                ("momentum", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("epochs", "README `--unlearn_epochs 10`"),
                ("batch_size", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("remain_fraction", "all of Dr"),
                OPTML_AUGMENT,
            ],
            contextual: vec![augment_default()],
            deviations: &[],
        }
    }
}
