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

use super::{Method, ParamSpec};

pub struct Ssd;

impl Method for Ssd {
    fn name(&self) -> &'static str {
        "ssd"
    }
    fn version(&self) -> u32 {
        // 3: Dr sorted by class in class removal, as `build_retain_forget_sets` builds it.
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "if-loops/selective-synaptic-dampening at cdfdc0e: `src/ssd.py`, `src/forget_full_class_main.py`, `src/forget_full_class_strategies.py` (`build_retain_forget_sets`), `src/forget_random_main.py`",
            defaults: &[
                ("alpha", "10", "`selection_weighting` 10 (ResNet)"),
                ("lambda", "1", "`dampening_constant` 1"),
                (
                    "batch_size",
                    "64 class / 128 random",
                    "`-b` default 64 (full class); 128 (random)",
                ),
                (
                    "retained order",
                    "by class (class removal) / split order (random)",
                    "`build_retain_forget_sets` appends the retained classes in order",
                ),
            ],
            deviations: &[
                "Random removal: the importance passes read Dr and Df in the split's (ascending) order; the reference's `random_split` leaves them in a random order. Only which samples share a batch differs.",
                "Random removal runs the full-class file's `ssd_tuning`: the random-removal file's copy (`forget_random_strategies.py`, line 339) assigns `ssd = ssd.ParameterPerturber(...)` and so raises UnboundLocalError at cdfdc0e; its body is otherwise the same.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lambda"],
            ints: &["batch_size"],
            strs: &[],
        }
    }
}
