//! Selective Synaptic Dampening (Foster et al., AAAI 2024): no training. Importance of every
//! parameter = mean squared cross-entropy gradient (diagonal Fisher, over batches as the public
//! code computes it) on Df (I_f) and on D (I_D). Where I_f > alpha * I_D, the weight is multiplied
//! by min(lambda * I_D / I_f, 1); all other weights are left exactly as they are.
//! Defaults: alpha 10, lambda 1, batch 32.

use super::common::{squared_grads, trainable};
use super::{Context, Method, Outcome, ParamSpec, details};
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct Ssd;

impl Method for Ssd {
    fn name(&self) -> &'static str {
        "ssd"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lambda"],
            ints: &["batch_size"],
            strs: &[],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (alpha, lambda, bs) = (
            p.f64("alpha", 10.0)?,
            p.f64("lambda", 1.0)?,
            p.usize("batch_size", 32)? as i64,
        );
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let all = Tensor::arange(ctx.data.meta.n_train, (Kind::Int64, tch::Device::Cpu));
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
                json!({"alpha": alpha, "lambda": lambda, "dampened_parameters": selected, "parameters": total}),
            ),
        })
    }
}
