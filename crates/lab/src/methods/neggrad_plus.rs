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

use super::{Declared, MethodParams, Optimizer, Reference, Scale};
use camu_core::params::ParamError;
use serde::{Deserialize, Serialize};

pub struct NegGradPlus;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NegGradPlusParams {
    pub preset: Scale,
    pub alpha: f64,
    pub anchor: f64,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub forget_batch_size: usize,
    pub remain_fraction: f64,
    /// Whether the model runs in train mode (batch norm on batch statistics).
    pub train_mode: bool,
}

impl NegGradPlusParams {
    /// `large_scale_ictest.ipynb` cell 40.
    pub fn large() -> Self {
        NegGradPlusParams {
            preset: Scale::Large,
            alpha: 0.9999,
            anchor: 0.0,
            optimizer: Optimizer::Sgd,
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            epochs: 10,
            batch_size: 128,
            forget_batch_size: 32,
            remain_fraction: 1.0,
            train_mode: true,
        }
    }
    /// `small_scale_unlearning.ipynb` cell 85.
    pub fn small() -> Self {
        NegGradPlusParams {
            preset: Scale::Small,
            alpha: 0.95,
            anchor: 0.1,
            forget_batch_size: 64,
            train_mode: false,
            ..Self::large()
        }
    }
}

impl Default for NegGradPlusParams {
    fn default() -> Self {
        Self::large()
    }
}

impl MethodParams for NegGradPlusParams {
    fn check(&self) -> Result<(), ParamError> {
        if self.alpha > 1.0 {
            return Err(ParamError::Range {
                key: "alpha".into(),
                rule: "be in [0, 1]",
            });
        }
        Ok(())
    }
    fn presets() -> Vec<(&'static str, Self)> {
        vec![("large", Self::large()), ("small", Self::small())]
    }
}

impl Declared for NegGradPlus {
    const NAME: &'static str = "neggrad_plus";
    // 4: the large-scale configuration by default (`preset`); v3 was the small-scale one.
    const VERSION: u32 = 4;
    type Params = NegGradPlusParams;
    fn reference() -> Reference {
        Reference {
            source: "meghdadk/SCRUB at 98ffb11: `large_scale_ictest.ipynb` (preset large) and `small_scale_unlearning.ipynb` (preset small): `negative_grad`, `train_negrad`, `run_neggrad_epoch`, `l2_penalty`",
            from: &[
                ("preset", "the repository's large-scale run for full datasets (`small`: the small-scale notebook)"),
                ("alpha", "`args.ng_alpha`"),
                ("anchor", "large: `train_negrad` has no anchor; small: `l2_penalty` with `--weight-decay 0.1`"),
                ("optimizer", "`torch.optim.SGD(lr=lr, weight_decay=0.0)`"),
                ("lr", "`args.ng_lr`"),
                ("momentum", "SGD without momentum"),
                ("weight_decay", "`weight_decay=0.0` in the optimizer"),
                ("epochs", "`args.ng_epochs`"),
                ("batch_size", "large `args.ng_bs`; small `args.batch_size`"),
                ("forget_batch_size", "`args.forget_bs`"),
                ("remain_fraction", "all of Dr"),
                ("train_mode", "large: `train_negrad` trains in train mode; small: `run_neggrad_epoch` in eval mode"),
            ],
            contextual: vec![],
            deviations: &["Every step is guarded as for neggrad."],
        }
    }
}
