//! L1Sparse: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::l1_sparse`.

use super::common::{pass, recipe, trainable};
use super::{Compute, Context, Outcome};
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{L1Sparse, L1SparseParams};

/// The reference's per-epoch weight of the l1 term (`epoch` counts from 0).
pub fn alpha_at(alpha: f64, epoch: usize, epochs: usize) -> f64 {
    if epochs == 0 {
        return alpha;
    }
    alpha * (1.0 - epoch as f64 / epochs as f64)
}

impl Compute for L1Sparse {
    fn unlearn(&self, ctx: &Context<'_>, p: L1SparseParams) -> Result<Outcome, crate::MlError> {
        let alpha = p.alpha;
        let mut s = recipe!(p).start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let params = trainable(model);
        let augment = ctx.augment(p.augment);
        let r = ctx.remain_subset(p.remain_fraction);
        let mut schedule = Vec::with_capacity(epochs);
        for e in 0..epochs {
            let a = alpha_at(alpha, e, epochs);
            schedule.push(a);
            pass(
                &format!("l1_sparse epoch {}/{epochs}", e + 1),
                &r,
                bs,
                |b| {
                    let bt = ctx.train_batch(b, None, augment);
                    let l1 = params.iter().fold(
                        Tensor::zeros([], (Kind::Float, ctx.device)),
                        |acc, (_, t)| acc + t.abs().sum(Kind::Float),
                    );
                    let loss =
                        model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y) + l1 * a;
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
        }
        Ok(s.outcome(&p, json!({"alpha_per_epoch": schedule, "augment": augment})))
    }
}

#[cfg(test)]
mod tests {
    use super::alpha_at;

    #[test]
    fn alpha_decays_per_epoch_and_never_reaches_zero() {
        let a: Vec<f64> = (0..10).map(|e| alpha_at(1.0, e, 10)).collect();
        assert_eq!(a[0], 1.0);
        assert!((a[9] - 0.1).abs() < 1e-12, "{a:?}");
        assert!(a.windows(2).all(|w| w[1] < w[0]));
    }
}
