//! CaMU (Shen et al., "CaMU: Disentangling Causal Effects in Deep Model Unlearning", SDM 2024),
//! following the authors' reference implementation step by step (shared/reference/camu-method.md):
//!
//! 1. counterfactuals: pair Df and Ds by position; x_cf = x_s + U[0,1) per pixel (after input
//!    normalisation); y_cf = y_s, redrawn uniformly among the other classes where y_cf == y_f;
//! 2. f_n = copy of f_o (frozen, eval mode); two Adam optimizers over all of f_n, each with weight
//!    decay 1e-4: opt_kl (lr KL_LR) and opt_ce (lr IMPAIR_LR);
//! 3. per epoch, shuffled batch-32 loaders over the counterfactual tuples and over Ds, in lockstep
//!    until the shorter ends; per pair of batches
//!    a. L_kl = 0.5 KL_sum(softmax(emb_o(x_r)) || softmax(emb_n(x_r))) + 0.5
//!    KL_sum(softmax(emb_o(x_cf)) || softmax(emb_n(x_f))), step opt_kl;
//!    b. L_ce = 0.9 CE(logits_n(x_r), y_r) + 0.01 CE(logits_n(x_f), y_cf), recomputed after (a),
//!    step opt_ce.
//!
//! `loop: fast` (the default) computes the same losses with less work: f_o is frozen and in eval
//! mode, so its log-softmaxed embeddings of Ds and of the counterfactuals are computed once, in
//! chunks, and indexed per step; for a model without batch norm (the CNN), f_n's two forwards of
//! each step part are one forward over the concatenated batches. Step order, batches, optimizers
//! and losses are unchanged; results differ from `loop: literal` (the reference's loop, six
//! forwards per step) only by floating-point rounding.
//!
//! Deliberate choices where the reference page is silent: inputs go through the test-time
//! transform (no augmentation) for both f_o and f_n; Df is repeated `forget_repeat` times (the
//! split's setting, 10 for the reference's CIFAR-100 class removal) before pairing.

use super::{Method, ParamSpec};
use camu_core::params::{ParamError, Params};

pub struct Camu;

impl Method for Camu {
    fn name(&self) -> &'static str {
        "camu"
    }
    fn version(&self) -> u32 {
        // 2: `loop: fast` by default.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "ShaofeiShen768/CaMU at 987b41a: `CaMU/config.py`, `CaMU/remove.py` (`causal_effect_removel`), `CaMU/prepare.py` (`counterfactual_generation`), `CaMU/main.py`",
            defaults: &[
                (
                    "impair_epochs",
                    "MNIST family: 10 random / 2 class; CIFAR: 10 / 2",
                    "`config.py` IMPAIR_EPOCHS per dataset and scenario",
                ),
                (
                    "impair_lr",
                    "MNIST family: 5e-4 random / 1e-3 class; CIFAR: 1e-4 / 5e-5",
                    "`config.py` IMPAIR_LR",
                ),
                (
                    "kl_lr",
                    "MNIST family: 4e-4; CIFAR: 1e-5",
                    "`config.py` KL_LR",
                ),
                (
                    "weight_decay",
                    "0.0001",
                    "both Adam optimizers in `remove.py`",
                ),
                ("batch_size", "32", "`construct_data(..., batch_size = 32)`"),
                ("kl_weight_remain", "0.5", "the KL loss in `remove.py`"),
                ("kl_weight_forget", "0.5", "the KL loss in `remove.py`"),
                ("ce_weight_remain", "0.9", "the CE loss in `remove.py`"),
                ("ce_weight_forget", "0.01", "the CE loss in `remove.py`"),
                (
                    "loop",
                    "fast",
                    "camu-pipe's; `literal` runs the reference's six forwards per step",
                ),
            ],
            deviations: &[
                "Inputs go through the test-time transform (no augmentation) for both models; the reference page is silent.",
                "Df is repeated `forget_repeat` times (a split setting; 1 unless set) before pairing with Ds.",
                "Df and Ds are paired in the split's (sorted) order, once; the reference pairs them once after shuffling both (`prepare.py`), a pairing with the same distribution.",
                "Counterfactual labels are drawn uniformly from the K-1 other classes, as the paper defines them. The reference's `prepare.py` (line 68) reuses `i` inside its list comprehension, so its candidates are the classes j with y_f[j] != j over the first K forget labels: in class removal of class 0 the same set, in random removal a label can equal the true one and some classes are never drawn.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "impair_lr",
                "kl_lr",
                "weight_decay",
                "kl_weight_remain",
                "kl_weight_forget",
                "ce_weight_remain",
                "ce_weight_forget",
            ],
            ints: &["impair_epochs", "batch_size"],
            strs: &["loop"],
        }
    }
    fn validate(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ParamError> {
        self.spec().check(params)?;
        match Params(params).opt_str("loop")? {
            None | Some("fast" | "literal") => Ok(()),
            Some(other) => {
                Err(format!("parameter `loop` must be `fast` or `literal`, got `{other}`").into())
            }
        }
    }
}
