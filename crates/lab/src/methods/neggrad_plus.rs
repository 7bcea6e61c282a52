//! NegGrad+ (Kurmanji et al., NeurIPS 2023, "Towards Unbounded Machine Unlearning"): per step,
//! alpha * (CE(f(x_r), y_r) + anchor / 2 * ||w - w_0||^2) - (1 - alpha) * CE(f(x_f), y_f), with
//! w_0 the original weights, over one pass of the retain loader per epoch with the forget loader
//! cycled alongside it (`itertools.cycle` replays the forget loader's first pass in the same order
//! for the rest of an epoch; the forget set is reshuffled each epoch), plain SGD.
//!
//! Reference: meghdadk/SCRUB at 98ffb11, `negative_grad` / `train_negrad` / `run_neggrad_epoch`
//! and `l2_penalty`, with two configurations:
//! - `preset: large` (the default: full datasets): `large_scale_ictest.ipynb` cell 40, the
//!   repository's only large-scale NegGrad+ run (`large_scale_unlearning.ipynb` runs none):
//!   `ng_alpha` 0.9999, `ng_epochs` 10, `ng_lr` 0.01, retain batch `ng_bs` 128, forget batch
//!   `forget_bs` 32, `SGD(lr, weight_decay=0)`, `train_negrad` in train mode, no anchor.
//! - `preset: small`: `small_scale_unlearning.ipynb` cell 85: `ng_alpha` 0.95, 10 epochs, lr
//!   0.01, retain batch 128, forget batch 64, `run_neggrad_epoch` in eval mode with the L2 anchor
//!   `l2_penalty(model, model_init, 0.1)` (`--weight-decay 0.1`).
//!
//! Deviation: every step is guarded; at the first step whose loss, weights or probe outputs would
//! not be finite, the method stops on the last finite weights and records `diverged_at_epoch`.

use super::{Method, ParamSpec};
use camu_core::params::{ParamError, Params};

pub struct NegGradPlus;

/// One of the reference's configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct NegGradPlusPreset {
    pub name: &'static str,
    pub alpha: f64,
    pub anchor: f64,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub forget_batch_size: usize,
    /// Whether the model runs in train mode (batch norm on batch statistics).
    pub train_mode: bool,
}

pub const NEGGRAD_PLUS_LARGE: NegGradPlusPreset = NegGradPlusPreset {
    name: "large",
    alpha: 0.9999,
    anchor: 0.0,
    lr: 0.01,
    epochs: 10,
    batch_size: 128,
    forget_batch_size: 32,
    train_mode: true,
};

pub const NEGGRAD_PLUS_SMALL: NegGradPlusPreset = NegGradPlusPreset {
    name: "small",
    alpha: 0.95,
    anchor: 0.1,
    lr: 0.01,
    epochs: 10,
    batch_size: 128,
    forget_batch_size: 64,
    train_mode: false,
};

/// The preset `with.preset` names (default: the large-scale one).
pub fn neggrad_plus_preset(
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<&'static NegGradPlusPreset, ParamError> {
    match Params(params).str("preset", "large")? {
        "large" => Ok(&NEGGRAD_PLUS_LARGE),
        "small" => Ok(&NEGGRAD_PLUS_SMALL),
        other => Err(format!("unknown preset `{other}` (large, small)").into()),
    }
}

impl Method for NegGradPlus {
    fn name(&self) -> &'static str {
        "neggrad_plus"
    }
    fn version(&self) -> u32 {
        // 4: the large-scale configuration by default (`preset`); v3 was the small-scale one.
        4
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "meghdadk/SCRUB at 98ffb11: `large_scale_ictest.ipynb` (preset large) and `small_scale_unlearning.ipynb` (preset small): `negative_grad`, `train_negrad`, `run_neggrad_epoch`, `l2_penalty`",
            defaults: &[
                (
                    "preset",
                    "large",
                    "the repository's large-scale run for full datasets, model in train mode (`small`: the small-scale notebook, eval mode)",
                ),
                ("alpha", "0.9999", "large `args.ng_alpha` (small: 0.95)"),
                (
                    "anchor",
                    "0",
                    "large: `train_negrad` has no anchor (small: `l2_penalty` with `--weight-decay 0.1`)",
                ),
                (
                    "optimizer",
                    "sgd",
                    "`torch.optim.SGD(lr=lr, weight_decay=0.0)`",
                ),
                ("lr", "0.01", "`args.ng_lr` (both)"),
                ("momentum", "0", "SGD without momentum"),
                ("weight_decay", "0", "`weight_decay=0.0` in the optimizer"),
                ("epochs", "10", "`args.ng_epochs` (both)"),
                (
                    "batch_size",
                    "128",
                    "large `args.ng_bs` (small: `args.batch_size` 128)",
                ),
                (
                    "forget_batch_size",
                    "32",
                    "large `args.forget_bs` (small: 64)",
                ),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &["Every step is guarded as for neggrad."],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "alpha",
                "anchor",
                "lr",
                "momentum",
                "weight_decay",
                "remain_fraction",
            ],
            ints: &["epochs", "batch_size", "forget_batch_size"],
            strs: &["optimizer", "preset"],
        }
    }
    fn validate(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ParamError> {
        self.spec().check(params)?;
        neggrad_plus_preset(params)?;
        let p = Params(params);
        if p.opt_i64("forget_batch_size")? == Some(0) {
            return Err("parameter `forget_batch_size` must be positive".into());
        }
        match p.opt_f64("alpha")? {
            Some(a) if a > 1.0 => Err("parameter `alpha` must be in [0, 1]".into()),
            _ => Ok(()),
        }
    }
}
