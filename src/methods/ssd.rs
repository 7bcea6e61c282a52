//! Selective Synaptic Dampening (Foster et al., AAAI 2024): no training. Importance of every
//! parameter = the mean over batches of the squared gradient of the batch-mean cross-entropy
//! (model in eval mode) on Df (I_f) and on D = Dr followed by Df, unshuffled (I_D). Where
//! I_f > alpha * I_D, the weight is multiplied by min(lambda * I_D / I_f, 1); all other weights
//! are left exactly as they are.
//!
//! Reference: if-loops/selective-synaptic-dampening, `src/ssd.py` (`calc_importance`,
//! `modify_weight`; exponent and lower bound 1), `src/forget_full_class_main.py` /
//! `forget_random_main.py` (`selection_weighting` 10 for ResNet, `dampening_constant` 1;
//! unshuffled loaders of batch 64 for full-class forgetting (`-b` default) and 128 for random
//! forgetting). The default batch follows the split's scenario accordingly.

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
        // 2: the repository's batch sizes (64 class, 128 random) and unshuffled Dr-then-Df order.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "if-loops/selective-synaptic-dampening `src/ssd.py`, `src/forget_full_class_main.py`, `src/forget_random_main.py`",
            defaults: &[
                ("alpha", "10", "`selection_weighting` 10 (ResNet)"),
                ("lambda", "1", "`dampening_constant` 1"),
                (
                    "batch_size",
                    "64 class / 128 random",
                    "`-b` default 64 (full class); 128 (random)",
                ),
            ],
            deviations: &[],
        }
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
            p.usize(
                "batch_size",
                if ctx.split.scenario.family() == "random" {
                    128
                } else {
                    64
                },
            )?
            .max(1) as i64,
        );
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let all = Tensor::cat(&[ctx.remain_idx(), ctx.forget_idx()], 0);
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
                json!({"alpha": alpha, "lambda": lambda, "batch_size": bs, "dampened_parameters": selected, "parameters": total}),
            ),
        })
    }
}
