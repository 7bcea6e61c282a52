//! Amnesiac unlearning, relabel variant (Graves et al. 2021, as public baselines implement it):
//! relabel each Df sample once with a random *wrong* class, mix it with all of Dr, train in train
//! mode.
//!
//! Reference: if-loops/selective-synaptic-dampening, `src/forget_full_class_strategies.py` and
//! `src/forget_random_strategies.py` (`amnesiac`): `DataLoader(unlearning_trainset, 128,
//! shuffle=True)` and `fit_one_unlearning_cycle(3, ..., lr=0.0001)`, which is Adam
//! (`src/unlearn.py`), 3 epochs, batch 128, no schedule.

use super::{Declared, MethodParams, Optimizer, Reference};
use serde::{Deserialize, Serialize};

pub struct Amnesiac;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmnesiacParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub remain_fraction: f64,
}

impl Default for AmnesiacParams {
    fn default() -> Self {
        AmnesiacParams {
            optimizer: Optimizer::Adam,
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 0.0,
            epochs: 3,
            batch_size: 128,
            remain_fraction: 1.0,
        }
    }
}

impl MethodParams for AmnesiacParams {}

impl Declared for Amnesiac {
    const NAME: &'static str = "amnesiac";
    // 2: batch 128 as the SSD repository (v1: 32).
    const VERSION: u32 = 2;
    type Params = AmnesiacParams;
    fn reference() -> Reference {
        Reference {
            source: "if-loops/selective-synaptic-dampening at cdfdc0e: `src/forget_full_class_strategies.py`, `src/forget_random_strategies.py` (`amnesiac`), `src/unlearn.py`",
            from: &[
                ("optimizer", "`fit_one_unlearning_cycle` builds `torch.optim.Adam`"),
                ("lr", "`lr=0.0001`"),
                ("momentum", "unused by Adam; SGD's momentum when `optimizer: sgd`"),
                ("weight_decay", "Adam's default"),
                ("epochs", "`fit_one_unlearning_cycle(3, ...)`"),
                ("batch_size", "`DataLoader(unlearning_trainset, 128, ...)`"),
                ("remain_fraction", "all of Dr"),
            ],
            contextual: vec![],
            deviations: &[],
        }
    }
}
