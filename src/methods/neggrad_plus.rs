//! NegGrad+ (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): per step,
//! alpha * CE(f(x_r), y_r) - (1 - alpha) * CE(f(x_f), y_f), the forget loader cycled alongside the
//! retain loader. If the ascent diverges, it stops on the last finite weights and records
//! `diverged_at_epoch`. Defaults: alpha 0.95, 10 epochs, SGD lr 0.01, momentum 0.9, weight decay 5e-4.

use super::common::{DivergenceGuard, Recipe};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::params::Params;
use crate::progress::StageProgress;
use serde_json::json;

pub struct NegGradPlus;

impl Method for NegGradPlus {
    fn name(&self) -> &'static str {
        "neggrad_plus"
    }
    fn version(&self) -> u32 {
        // 2: guarded steps (v1 could return non-finite weights after diverging).
        2
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn validate(&self, params: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
        self.spec().check(params)?;
        match Params(params).opt_f64("alpha")? {
            Some(a) if a > 1.0 => Err("parameter `alpha` must be in [0, 1]".into()),
            _ => Ok(()),
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let alpha = p.f64("alpha", 0.95)?;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let remain = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        let forget = ctx.forget_idx();
        // The ascent term is unbounded (a whole class in class removal): stop at the first step
        // whose loss or weights would not be finite, keeping the last finite weights.
        let mut guard = DivergenceGuard::new(model);
        let mut diverged = None;
        'outer: for e in 1..=epochs {
            let fb = batches(&forget, bs, true);
            let rbs = batches(&remain, bs, true);
            let bar = StageProgress::new(
                &format!("neggrad+ epoch {e}/{epochs}"),
                rbs.len() as u64,
                "batches",
            );
            for (k, rb) in rbs.iter().enumerate() {
                let r = ctx.batch(rb, None);
                let f = ctx.batch(&fb[k % fb.len()], None);
                let loss = model.forward(&r.x, true).0.cross_entropy_for_logits(&r.y) * alpha
                    - model.forward(&f.x, true).0.cross_entropy_for_logits(&f.y) * (1.0 - alpha);
                if !guard.step(opt, &loss) {
                    tracing::warn!(
                        "neggrad+ diverged at epoch {e}, step {k}; keeping the last finite weights"
                    );
                    diverged = Some(e);
                    break 'outer;
                }
                if k % 50 == 0 {
                    bar.set_message(format!("loss {:.4}", loss.double_value(&[])));
                }
                bar.set(k as u64 + 1);
            }
            bar.finish();
        }
        Ok(s.outcome(json!({"alpha": alpha, "diverged_at_epoch": diverged})))
    }
}
