//! Amnesiac unlearning, relabel variant (Graves et al. 2021, as public baselines implement it):
//! relabel each Df sample once with a random *wrong* class, mix it with all of Dr, train in train
//! mode.
//!
//! Reference: if-loops/selective-synaptic-dampening, `src/forget_full_class_strategies.py` and
//! `src/forget_random_strategies.py` (`amnesiac`): `DataLoader(unlearning_trainset, 128,
//! shuffle=True)` and `fit_one_unlearning_cycle(3, ..., lr=0.0001)`, which is Adam
//! (`src/unlearn.py`), 3 epochs, batch 128, no schedule.

use super::{Method, ParamSpec};

pub struct Amnesiac;

impl Method for Amnesiac {
    fn name(&self) -> &'static str {
        "amnesiac"
    }
    fn version(&self) -> u32 {
        // 2: batch 128 as the SSD repository (v1: 32).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "if-loops/selective-synaptic-dampening at cdfdc0e: `src/forget_full_class_strategies.py`, `src/forget_random_strategies.py` (`amnesiac`), `src/unlearn.py`",
            defaults: &[
                (
                    "optimizer",
                    "adam",
                    "`fit_one_unlearning_cycle` builds `torch.optim.Adam`",
                ),
                ("lr", "0.0001", "`lr=0.0001`"),
                ("weight_decay", "0", "Adam's default"),
                ("epochs", "3", "`fit_one_unlearning_cycle(3, ...)`"),
                (
                    "batch_size",
                    "128",
                    "`DataLoader(unlearning_trainset, 128, ...)`",
                ),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
}
