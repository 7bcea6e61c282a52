//! NegGrad / gradient ascent (Golatkar et al. 2020; Thudi et al. 2022): maximise the
//! cross-entropy on Df only, i.e. minimise -CE(f(x_f), y_f). Collapses easily, which comparisons
//! should show: if the loss stops being finite, the method stops, keeps the last finite weights
//! and records `diverged_at_epoch`. Defaults: SGD lr 1e-4, momentum 0.9, 5 epochs.

use super::common::optimizer;
use super::{Context, Method, Outcome, ParamSpec, details};
use crate::ml::batches;
use crate::params::Params;
use crate::progress::StageProgress;
use serde_json::json;

pub struct NegGrad;

impl Method for NegGrad {
    fn name(&self) -> &'static str {
        "neggrad"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 1e-4)?,
            p.f64("weight_decay", 0.0)?,
            p.usize("epochs", 5)?,
            p.usize("batch_size", 32)? as i64,
        );
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let mut opt = optimizer(&p, &model.vs, "sgd", lr, wd)?;
        let f = ctx.forget_idx();
        // Ascent is unbounded: once the loss stops being finite, stop before stepping into NaN
        // weights and record where it diverged.
        let mut diverged = None;
        'outer: for e in 1..=epochs {
            let bar = StageProgress::new(&format!("neggrad epoch {e}/{epochs}"), 0, "batches");
            for (k, b) in batches(&f, bs, true).iter().enumerate() {
                let bt = ctx.batch(b, None);
                let loss = -model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y);
                let l = loss.double_value(&[]);
                if !l.is_finite() {
                    tracing::warn!(
                        "neggrad diverged at epoch {e}, step {k}; keeping the last finite weights"
                    );
                    diverged = Some(e);
                    break 'outer;
                }
                opt.backward_step(&loss);
                bar.set_message(format!("loss {l:.4}"));
            }
            bar.finish();
        }
        Ok(Outcome {
            model,
            details: details(
                json!({"lr": lr, "weight_decay": wd, "epochs": epochs, "batch_size": bs, "diverged_at_epoch": diverged}),
            ),
        })
    }
}
