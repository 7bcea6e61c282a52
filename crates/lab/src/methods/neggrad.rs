//! NegGrad / gradient ascent (GA; Golatkar et al. 2020, Thudi et al. 2022): maximise the
//! cross-entropy on Df only, i.e. minimise -CE(f(x_f), y_f), model in train mode.
//!
//! Reference: OPTML-Group/Unlearn-Sparse `unlearn/GA.py` through `unlearn/impl.py`, with the
//! README's `--unlearn GA --unlearn_lr 0.0001 --unlearn_epochs 5` and `arg_parser.py`'s SGD
//! momentum 0.9, weight decay 5e-4, batch 256.
//!
//! Deviation: ascent is unbounded, so every step is guarded. At the first step whose loss, weights
//! or outputs on a probe batch would not be finite, the method stops, keeps the last finite
//! weights and records `diverged_at_epoch`; the reference would carry on with NaN weights.

use super::{Declared, MethodParams, OPTML, OPTML_AUGMENT, Optimizer, Reference, augment_default};
use serde::{Deserialize, Serialize};

pub struct NegGrad;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NegGradParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub augment: Option<bool>,
}

impl Default for NegGradParams {
    fn default() -> Self {
        NegGradParams {
            optimizer: Optimizer::Sgd,
            lr: 1e-4,
            momentum: OPTML.momentum,
            weight_decay: OPTML.weight_decay,
            epochs: 5,
            batch_size: OPTML.batch_size,
            augment: None,
        }
    }
}

impl MethodParams for NegGradParams {}

impl Declared for NegGrad {
    const NAME: &'static str = "neggrad";
    // 3: weight decay 5e-4 and batch 256 as OPTML; the guard also checks outputs.
    // 4: CIFAR batches augmented as OPTML (`augment`).
    const VERSION: u32 = 4;
    type Params = NegGradParams;
    fn reference() -> Reference {
        Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/GA.py` via `unlearn/impl.py`; README command for GA",
            from: &[
                ("optimizer", "`impl.py`"),
                ("lr", "README `--unlearn_lr 0.0001`"),
                ("momentum", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("weight_decay", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                ("epochs", "README `--unlearn_epochs 5`"),
                ("batch_size", "OPTML-Group/Unlearn-Sparse `arg_parser.py`"),
                OPTML_AUGMENT,
            ],
            contextual: vec![augment_default()],
            deviations: &[
                "Every step is guarded: at the first step whose loss, weights or probe outputs are not finite the run stops on the last finite weights and records `diverged_at_epoch` (the reference continues with NaN weights).",
            ],
        }
    }
}
