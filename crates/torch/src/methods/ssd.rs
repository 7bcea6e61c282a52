//! Ssd: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::ssd`.

use super::common::{squared_grads, trainable};
use super::{Compute, Context, Outcome, details};
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{Ssd, SsdParams, ssd_batch_size};
use camu_lab::protocol::Scenario;

/// Dr in the order the reference's importance loader on D reads it. Full-class removal builds
/// the retained set class by class (`build_retain_forget_sets` over `classwise_train`, each class
/// in dataset order), so its unshuffled batches are nearly single-class; random removal keeps
/// the split's order.
pub fn retained_order(ctx: &Context<'_>) -> Result<Vec<i64>, crate::MlError> {
    let mut r = ctx.split.remain.clone();
    if matches!(ctx.split.scenario, Scenario::Class { .. }) {
        let labels = Vec::<i64>::try_from(&ctx.data.train_y).map_err(crate::MlError::from)?;
        r.sort_by_key(|&i| (labels[i as usize], i));
    }
    Ok(r)
}

impl Compute for Ssd {
    fn unlearn(&self, ctx: &Context<'_>, mut p: SsdParams) -> Result<Outcome, crate::MlError> {
        let batch = *p
            .batch_size
            .get_or_insert(ssd_batch_size(ctx.random_removal()));
        let (alpha, lambda, bs) = (p.alpha, p.lambda, batch as i64);
        let model = ctx.original.duplicate().map_err(crate::MlError::from)?;
        let order = retained_order(ctx)?;
        let sorted = matches!(ctx.split.scenario, Scenario::Class { .. });
        let all = Tensor::cat(&[crate::ml::idx_tensor(&order), ctx.forget_idx()], 0);
        let i_d = squared_grads(ctx, &model, &all, bs, "ssd: importance on D")?;
        let i_f = squared_grads(ctx, &model, &ctx.forget_idx(), bs, "ssd: importance on Df")?;
        let (mut selected, mut total) = (0i64, 0i64);
        tch::no_grad(|| {
            for (((_, w), (_, d)), (_, f)) in trainable(&model).iter().zip(&i_d).zip(&i_f) {
                let mask = f.gt_tensor(&(d * alpha));
                let factor = (d * lambda / f.clamp_min(1e-30)).clamp_max(1.0);
                let mut w = w.shallow_clone();
                let new = (&w * &factor).where_self(&mask, &w);
                w.copy_(&new);
                selected += mask.sum(Kind::Int64).int64_value(&[]);
                total += mask.numel() as i64;
            }
        });
        Ok(Outcome {
            model,
            details: details(
                &p,
                json!({"retained_order": if sorted { "by class" } else { "split order" }, "dampened_parameters": selected, "parameters": total}),
            ),
        })
    }
}
