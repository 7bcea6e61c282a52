//! Fine-tuning (FT): continue training f_o on Dr only with cross-entropy, relying on catastrophic
//! forgetting of Df.
//!
//! Reference: OPTML-Group/Unlearn-Sparse (Jia et al., NeurIPS 2023), `unlearn/FT.py` run through
//! `unlearn/impl.py`, with the README's CIFAR-10 command `--unlearn FT --unlearn_lr 0.01
//! --unlearn_epochs 10` and `arg_parser.py`'s defaults: SGD momentum 0.9, weight decay 5e-4,
//! batch 256, model in train mode. The MultiStepLR milestones (91, 136) are never reached in 10
//! epochs, so the lr is constant. (The SSD repository's finetune, lr 0.02 for 5 epochs, is another
//! source; it is not mixed in.)

use super::{Method, ParamSpec};

pub struct Finetune;

impl Method for Finetune {
    fn name(&self) -> &'static str {
        "finetune"
    }
    fn version(&self) -> u32 {
        // 2: OPTML's 10 epochs at batch 256 (v1: 5 epochs at batch 32).
        // 3: CIFAR batches augmented as OPTML (`augment`).
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/FT.py` via `unlearn/impl.py`; README command for FT",
            defaults: &[
                ("optimizer", "sgd", "`impl.py`: torch.optim.SGD"),
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
                (
                    "remain_fraction",
                    "1",
                    "all of Dr (`data_loaders['retain']`)",
                ),
                super::OPTML_AUGMENT,
            ],
            deviations: &[
                "The SSD repository's finetune (lr 0.02, 5 epochs) is a different source and is not mixed in.",
            ],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
}
