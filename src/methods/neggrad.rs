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

use super::common::{DivergenceGuard, Recipe};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::progress::StageProgress;
use serde_json::json;

pub struct NegGrad;

impl Method for NegGrad {
    fn name(&self) -> &'static str {
        "neggrad"
    }
    fn version(&self) -> u32 {
        // 3: weight decay 5e-4 and batch 256 as OPTML; the guard also checks outputs.
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Sparse `unlearn/GA.py` via `unlearn/impl.py`; README command for GA",
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
            ],
            deviations: &[
                "Every step is guarded: at the first step whose loss, weights or probe outputs are not finite the run stops on the last finite weights and records `diverged_at_epoch` (the reference continues with NaN weights).",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 5,
            batch_size: 256,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let f = ctx.forget_idx();
        let mut guard = DivergenceGuard::new(model, ctx.probe());
        let mut diverged = None;
        'outer: for e in 1..=epochs {
            let fbs = batches(&f, bs, true);
            let bar = StageProgress::new(
                &format!("neggrad epoch {e}/{epochs}"),
                fbs.len() as u64,
                "batches",
            );
            for (k, b) in fbs.iter().enumerate() {
                let bt = ctx.batch(b, None);
                let loss = -model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y);
                if !guard.step(opt, &loss) {
                    tracing::warn!(
                        "neggrad diverged at epoch {e}, step {k}; keeping the last finite weights"
                    );
                    diverged = Some(e);
                    break 'outer;
                }
                bar.set_message(format!("loss {:.4}", loss.double_value(&[])));
                bar.set(k as u64 + 1);
            }
            bar.finish();
        }
        Ok(s.outcome(json!({"diverged_at_epoch": diverged})))
    }
}
