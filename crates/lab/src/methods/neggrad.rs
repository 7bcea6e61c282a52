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

use super::{Method, ParamSpec};

pub struct NegGrad;

impl Method for NegGrad {
    fn name(&self) -> &'static str {
        "neggrad"
    }
    fn version(&self) -> u32 {
        // 3: weight decay 5e-4 and batch 256 as OPTML; the guard also checks outputs.
        // 4: CIFAR batches augmented as OPTML (`augment`).
        4
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Sparse at 80ba55d: `unlearn/GA.py` via `unlearn/impl.py`; README command for GA",
            defaults: &[
                ("optimizer", "sgd", "`impl.py`"),
                ("lr", "0.0001", "README `--unlearn_lr 0.0001`"),
                (
                    "momentum",
                    "0.9",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                (
                    "weight_decay",
                    "0.0005",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                ("epochs", "5", "README `--unlearn_epochs 5`"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                super::OPTML_AUGMENT,
            ],
            deviations: &[
                "Every step is guarded: at the first step whose loss, weights or probe outputs are not finite the run stops on the last finite weights and records `diverged_at_epoch` (the reference continues with NaN weights).",
            ],
        }
    }
    fn augments(&self) -> bool {
        true
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
