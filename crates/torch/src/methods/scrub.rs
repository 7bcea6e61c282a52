//! Scrub: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::scrub`.

use super::common::{Recipe, kl_t, pass};
use super::{Context, Outcome, Unlearn};
use camu_core::params::Params;
use serde_json::json;

use camu_lab::methods::Scrub;

/// The notebook's epochs after which the lr decays.
const DECAY_EPOCHS: [usize; 3] = [5, 8, 9];

/// lr of `epoch` (from 1) under `adjust_learning_rate`.
pub fn lr_at(lr: f64, rate: f64, epoch: usize) -> f64 {
    let steps = DECAY_EPOCHS.iter().filter(|&&d| epoch > d).count();
    lr * rate.powi(steps as i32)
}

impl Unlearn for Scrub {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let p = Params(ctx.params);
        let (t, gamma, alpha) = (
            p.f64("temperature", 2.0)?.max(1e-6),
            p.f64("gamma", 1.0)?,
            p.f64("alpha", 0.5)?,
        );
        let msteps = p.usize("msteps", 3)?;
        let rate = p.f64("lr_decay_rate", 0.1)?;
        let fbs = p.usize("forget_batch_size", 64)?.max(1) as i64;
        let mut s = Recipe {
            optimizer: "adam",
            lr: 5e-4,
            momentum: 0.9,
            weight_decay: 0.1,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let teacher = ctx.original;
        let (student, opt, epochs, bs, lr) = (&s.model, &mut s.opt, s.epochs, s.batch, s.lr);
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.f64("remain_fraction", 1.0)?),
        );
        let mut lrs = Vec::with_capacity(epochs);
        for e in 1..=epochs {
            let lr_e = lr_at(lr, rate, e);
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
        Ok(s.outcome(json!({
            "temperature": t, "gamma": gamma, "alpha": alpha, "msteps": msteps,
            "forget_batch_size": fbs, "lr_decay_rate": rate, "lr_per_epoch": lrs,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::lr_at;

    #[test]
    fn lr_decays_as_adjust_learning_rate() {
        let lrs: Vec<f64> = (1..=10).map(|e| lr_at(1.0, 0.1, e)).collect();
        let want = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.001];
        for (a, b) in lrs.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
    }
}
