//! Selective Synaptic Dampening (Foster et al., AAAI 2024): no training. Importance of every
//! parameter = the mean over batches of the squared gradient of the batch-mean cross-entropy
//! (model in eval mode) on Df (I_f) and on D = Dr followed by Df, unshuffled (I_D); in class
//! removal Dr is sorted by class, as the repository builds it (`build_retain_forget_sets`). Where
//! I_f > alpha * I_D, the weight is multiplied by min(lambda * I_D / I_f, 1); all other weights
//! are left exactly as they are.
//!
//! Reference: if-loops/selective-synaptic-dampening at cdfdc0e, `src/ssd.py` (`calc_importance`,
//! `modify_weight`; exponent and lower bound 1), `src/forget_full_class_main.py` /
//! `forget_random_main.py` (`selection_weighting` 10 for ResNet, `dampening_constant` 1;
//! unshuffled loaders of batch 64 for full-class forgetting (`-b` default) and 128 for random
//! forgetting). The default batch follows the split's scenario accordingly.

use super::{Declared, MethodParams, Reference};
use serde::{Deserialize, Serialize};

pub struct Ssd;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsdParams {
    pub alpha: f64,
    pub lambda: f64,
    /// Unset: [`ssd_batch_size`] for the split's scenario.
    pub batch_size: Option<usize>,
}

impl Default for SsdParams {
    fn default() -> Self {
        SsdParams {
            alpha: 10.0,
            lambda: 1.0,
            batch_size: None,
        }
    }
}

impl MethodParams for SsdParams {}

/// The reference's batch size: `-b` 64 in the full-class script, 128 in the random one.
pub fn ssd_batch_size(random: bool) -> usize {
    if random { 128 } else { 64 }
}

impl Declared for Ssd {
    const NAME: &'static str = "ssd";
    // 3: Dr sorted by class in class removal, as `build_retain_forget_sets` builds it.
    const VERSION: u32 = 3;
    type Params = SsdParams;
    fn reference() -> Reference {
        Reference {
            source: "if-loops/selective-synaptic-dampening at cdfdc0e: `src/ssd.py`, `src/forget_full_class_main.py`, `src/forget_full_class_strategies.py` (`build_retain_forget_sets`, which appends the retained classes in order: Dr is read by class in class removal, in the split's order in random removal), `src/forget_random_main.py`",
            from: &[
                ("alpha", "`selection_weighting` 10 (ResNet)"),
                ("lambda", "`dampening_constant` 1"),
                ("batch_size", "`-b` default (full class); the random-removal script's"),
            ],
            contextual: vec![(
                "batch_size",
                format!(
                    "{} class / {} random",
                    ssd_batch_size(false),
                    ssd_batch_size(true)
                ),
            )],
            deviations: &[
                "Random removal: the importance passes read Dr and Df in the split's (ascending) order; the reference's `random_split` leaves them in a random order. Only which samples share a batch differs.",
                "Random removal runs the full-class file's `ssd_tuning`: the random-removal file's copy (`forget_random_strategies.py`, line 339) assigns `ssd = ssd.ParameterPerturber(...)` and so raises UnboundLocalError at cdfdc0e; its body is otherwise the same.",
            ],
        }
    }
}
