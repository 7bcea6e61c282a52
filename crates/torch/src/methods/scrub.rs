//! Scrub: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::scrub`.

use super::common::{kl_t, pass, recipe};
use super::{Compute, Context, Outcome};
use serde_json::json;

use camu_lab::methods::{Scrub, ScrubParams};

/// lr of `epoch` (from 1) under `adjust_learning_rate`, decaying after each of `decay_epochs`.
pub fn lr_at(lr: f64, rate: f64, decay_epochs: &[usize], epoch: usize) -> f64 {
    let steps = decay_epochs.iter().filter(|&&d| epoch > d).count();
    lr * rate.powi(steps as i32)
}

impl Compute for Scrub {
    fn unlearn(&self, ctx: &Context<'_>, p: ScrubParams) -> Result<Outcome, crate::MlError> {
        let (t, gamma, alpha) = (p.temperature.max(1e-6), p.gamma, p.alpha);
        let (msteps, rate) = (p.msteps, p.lr_decay_rate);
        let fbs = p.forget_batch_size as i64;
        let mut s = recipe!(p).start(ctx)?;
        let teacher = ctx.original;
        let (student, opt, epochs, bs, lr) = (&s.model, &mut s.opt, s.epochs, s.batch, s.lr);
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.remain_fraction),
        );
        let mut lrs = Vec::with_capacity(epochs);
        for e in 1..=epochs {
            let lr_e = lr_at(lr, rate, &p.decay_epochs, e);
            opt.set_lr(lr_e);
            lrs.push(lr_e);
            if e <= msteps {
                pass(
                    &format!("scrub epoch {e}/{epochs} (max, Df)"),
                    &f,
                    fbs,
                    |b| {
                        let bt = ctx.batch(b, None);
                        let tl = tch::no_grad(|| teacher.forward(&bt.x, false).0);
                        let loss = -kl_t(&tl, &student.forward(&bt.x, true).0, t);
                        opt.backward_step(&loss);
                        Ok(loss.double_value(&[]))
                    },
                )?;
            }
            pass(
                &format!("scrub epoch {e}/{epochs} (min, Dr)"),
                &r,
                bs,
                |b| {
                    let bt = ctx.batch(b, None);
                    let tl = tch::no_grad(|| teacher.forward(&bt.x, false).0);
                    let sl = student.forward(&bt.x, true).0;
                    let loss =
                        sl.cross_entropy_for_logits(&bt.y) * gamma + kl_t(&tl, &sl, t) * alpha;
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
        }
        Ok(s.outcome(&p, json!({"temperature": t, "lr_per_epoch": lrs})))
    }
}

#[cfg(test)]
mod tests {
    use super::lr_at;

    #[test]
    fn lr_decays_as_adjust_learning_rate() {
        let lrs: Vec<f64> = (1..=10).map(|e| lr_at(1.0, 0.1, &[5, 8, 9], e)).collect();
        let want = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.001];
        for (a, b) in lrs.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
    }
}
