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

use super::{Declared, MethodParams, Reference};
use crate::protocol::Family;
use serde::{Deserialize, Serialize};

pub struct Camu;

/// The training loop: the fast one, or the reference's six forwards per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CamuLoop {
    Fast,
    Literal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CamuParams {
    /// Unset: [`camu_reference`] for the data and the scenario; likewise `impair_lr`, `kl_lr`.
    pub impair_epochs: Option<usize>,
    pub impair_lr: Option<f64>,
    pub kl_lr: Option<f64>,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub kl_weight_remain: f64,
    pub kl_weight_forget: f64,
    pub ce_weight_remain: f64,
    pub ce_weight_forget: f64,
    #[serde(rename = "loop")]
    pub loop_: CamuLoop,
}

impl Default for CamuParams {
    fn default() -> Self {
        CamuParams {
            impair_epochs: None,
            impair_lr: None,
            kl_lr: None,
            weight_decay: 1e-4,
            batch_size: 32,
            kl_weight_remain: 0.5,
            kl_weight_forget: 0.5,
            ce_weight_remain: 0.9,
            ce_weight_forget: 0.01,
            loop_: CamuLoop::Fast,
        }
    }
}

impl MethodParams for CamuParams {}

/// `config.py`'s (IMPAIR_EPOCHS, IMPAIR_LR, KL_LR) for a dataset family and a removal scenario.
pub fn camu_reference(family: Family, random: bool) -> (usize, f64, f64) {
    match (family, random) {
        (Family::Mnist, true) => (10, 5e-4, 4e-4),
        (Family::Mnist, false) => (2, 1e-3, 4e-4),
        (Family::Cifar, true) => (10, 1e-4, 1e-5),
        (Family::Cifar, false) => (2, 5e-5, 1e-5),
    }
}

/// One of [`camu_reference`]'s columns, per family and scenario, as the documentation shows it.
fn per_context(pick: impl Fn((usize, f64, f64)) -> String) -> String {
    let at = |f, r| pick(camu_reference(f, r));
    let (mr, mc, cr, cc) = (
        at(Family::Mnist, true),
        at(Family::Mnist, false),
        at(Family::Cifar, true),
        at(Family::Cifar, false),
    );
    if mr == mc && cr == cc {
        format!("MNIST family: {mr}; CIFAR: {cr}")
    } else {
        format!("MNIST family: {mr} random / {mc} class; CIFAR: {cr} / {cc}")
    }
}

impl Declared for Camu {
    const NAME: &'static str = "camu";
    const VERSION: u32 = 2;
    type Params = CamuParams;
    fn reference() -> Reference {
        Reference {
            source: "ShaofeiShen768/CaMU at 987b41a: `CaMU/config.py`, `CaMU/remove.py` (`causal_effect_removel`), `CaMU/prepare.py` (`counterfactual_generation`), `CaMU/main.py`",
            from: &[
                ("impair_epochs", "`config.py` IMPAIR_EPOCHS per dataset and scenario"),
                ("impair_lr", "`config.py` IMPAIR_LR"),
                ("kl_lr", "`config.py` KL_LR"),
                ("weight_decay", "both Adam optimizers in `remove.py`"),
                ("batch_size", "`construct_data(..., batch_size = 32)`"),
                ("kl_weight_remain", "the KL loss in `remove.py`"),
                ("kl_weight_forget", "the KL loss in `remove.py`"),
                ("ce_weight_remain", "the CE loss in `remove.py`"),
                ("ce_weight_forget", "the CE loss in `remove.py`"),
                ("loop", "camu-pipe's; `literal` runs the reference's six forwards per step"),
            ],
            contextual: vec![
                ("impair_epochs", per_context(|r| r.0.to_string())),
                ("impair_lr", per_context(|r| format!("{:e}", r.1))),
                ("kl_lr", per_context(|r| format!("{:e}", r.2))),
            ],
            deviations: &[
                "Inputs go through the test-time transform (no augmentation) for both models; the reference page is silent.",
                "Df is repeated `forget_repeat` times (a split setting; 1 unless set) before pairing with Ds.",
                "Df and Ds are paired in the split's (sorted) order, once; the reference pairs them once after shuffling both (`prepare.py`), a pairing with the same distribution.",
                "Counterfactual labels are drawn uniformly from the K-1 other classes, as the paper defines them. The reference's `prepare.py` (line 68) reuses `i` inside its list comprehension, so its candidates are the classes j with y_f[j] != j over the first K forget labels: in class removal of class 0 the same set, in random removal a label can equal the true one and some classes are never drawn.",
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_table() {
        assert_eq!(camu_reference(Family::Mnist, true), (10, 5e-4, 4e-4));
        assert_eq!(camu_reference(Family::Cifar, false), (2, 5e-5, 1e-5));
        let text = per_context(|r| format!("{:e}", r.1));
        assert_eq!(text, "MNIST family: 5e-4 random / 1e-3 class; CIFAR: 1e-4 / 5e-5");
    }
}
