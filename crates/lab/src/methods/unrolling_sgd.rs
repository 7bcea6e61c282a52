//! Unrolling SGD (Thudi et al., USENIX Security 2022; "Unrolling" in the CaMU paper), single-step
//! variant. Training with SGD adds, over E epochs at learning rate lr and batch size B, about
//! -(lr * E / B) * sum over Df of grad L(w; x) to the weights; unlearning adds it back:
//!
//!   w' = w + scale * (lr * E / B) * sum_{x in Df} grad L(w; x)
//!
//! Variant implemented: the gradients are taken at the trained weights w of f_o (the initial
//! weights are not kept), in one first-order step over all of Df (the public code,
//! cleverhans-lab/unrolling-sgd, does it for one batch of a model trained with plain SGD).
//! lr, E and B are the original model's own: read from its training record (`config` in its
//! `metrics.json`), overridable with `with`; a model without a record needs them given. The
//! original here is trained with Adam, not SGD, so lr * E / B is the SGD-equivalent step the
//! method assumes, not an exact inverse of the training.

use super::{Method, ParamSpec};

pub struct UnrollingSgd;

impl Method for UnrollingSgd {
    fn name(&self) -> &'static str {
        "unrolling_sgd"
    }
    fn version(&self) -> u32 {
        // 2: lr, epochs and batch size from the original's training record (v1: fixed 20 epochs).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "cleverhans-lab/unrolling-sgd at 49e001f (single-step first-order correction)",
            defaults: &[
                (
                    "lr",
                    "the original's recorded lr",
                    "the original model's training record (`config.lr`)",
                ),
                (
                    "epochs",
                    "the original's recorded epochs",
                    "the original model's training record (`config.epochs`)",
                ),
                (
                    "batch_size",
                    "the original's recorded batch size",
                    "the original model's training record (`config.batch_size`)",
                ),
                ("scale", "1", "the formula as published"),
            ],
            deviations: &[
                "One correction over all of Df at the trained weights; the public code does it for one batch.",
                "The original here is trained with Adam, not SGD: lr * E / B is the SGD-equivalent step the method assumes.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "scale"],
            ints: &["epochs", "batch_size"],
            strs: &[],
        }
    }
}
