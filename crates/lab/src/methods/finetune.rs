//! Fine-tuning (FT): continue training f_o on Dr only with cross-entropy, relying on catastrophic
//! forgetting of Df.
//!
//! Reference: OPTML-Group/Unlearn-Sparse (Jia et al., NeurIPS 2023), `unlearn/FT.py` run through
//! `unlearn/impl.py`, with the README's CIFAR-10 command `--unlearn FT --unlearn_lr 0.01
//! --unlearn_epochs 10` and `arg_parser.py`'s defaults: SGD momentum 0.9, weight decay 5e-4,
//! batch 256, model in train mode. The MultiStepLR milestones (91, 136) are never reached in 10
//! epochs, so the lr is constant. (The SSD repository's finetune, lr 0.02 for 5 epochs, is another
//! source; it is not mixed in.)

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

pub struct Finetune;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub remain_fraction: f64,
    pub augment: Option<bool>,
}

impl Default for FinetuneParams {
    fn default() -> Self {
        FinetuneParams {
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

impl MethodParams for FinetuneParams {}

impl Declared for Finetune {
    const NAME: &'static str = "finetune";
    // 2: OPTML's 10 epochs at batch 256 (v1: 5 epochs at batch 32).
    // 3: CIFAR batches augmented as OPTML (`augment`).
    const VERSION: u32 = 3;
    type Params = FinetuneParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/FT.py` via `unlearn/impl.py`; README command for FT",
            from: &[
                ("optimizer", "`impl.py`: torch.optim.SGD"),
                ("lr", "README `--unlearn_lr 0.01`"),
                ("momentum", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("epochs", "README `--unlearn_epochs 10`"),
                ("batch_size", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("remain_fraction", "all of Dr (`data_loaders['retain']`)"),
                OPTML_AUGMENT,
            ],
            contextual: vec![augment_default()],
            deviations: &[
                "The SSD repository's finetune (lr 0.02, 5 epochs) is a different source and is not mixed in.",
            ],
        }
    }
}
