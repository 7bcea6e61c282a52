//! l1-sparse unlearning (Jia et al., NeurIPS 2023, "Model Sparsity Can Simplify Machine
//! Unlearning"): fine-tune on Dr with CE + alpha_t * ||w||_1, alpha_t decaying linearly from
//! `alpha` to 0 over the run. Defaults: alpha 5e-4, 10 epochs, SGD lr 0.01, momentum 0.9,
//! weight decay 5e-4.

use super::common::{optimizer, pass, trainable};
use super::{Context, Method, Outcome, ParamSpec, details};
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct L1Sparse;

impl Method for L1Sparse {
    fn name(&self) -> &'static str {
        "l1_sparse"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (alpha, lr, wd) = (
            p.f64("alpha", 5e-4)?,
            p.f64("lr", 0.01)?,
            p.f64("weight_decay", 5e-4)?,
        );
        let (epochs, bs) = (p.usize("epochs", 10)?, p.usize("batch_size", 32)? as i64);
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let mut opt = optimizer(&p, &model.vs, "sgd", lr, wd)?;
        let params = trainable(&model);
        let r = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        let steps_per_epoch = (r.size()[0] + bs - 1) / bs;
        let total = (steps_per_epoch * epochs as i64).max(1) as f64;
        let mut step = 0f64;
        for e in 1..=epochs {
            pass(&format!("l1_sparse epoch {e}/{epochs}"), &r, bs, |b| {
                let bt = ctx.batch(b, None);
                let a = alpha * (1.0 - step / total);
                step += 1.0;
                let l1 = params.iter().fold(
                    Tensor::zeros([], (Kind::Float, ctx.device)),
                    |acc, (_, t)| acc + t.abs().sum(Kind::Float),
                );
                let loss = model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y) + l1 * a;
                opt.backward_step(&loss);
                Ok(loss.double_value(&[]))
            })?;
        }
        Ok(Outcome {
            model,
            details: details(
                json!({"alpha": alpha, "lr": lr, "weight_decay": wd, "epochs": epochs, "batch_size": bs}),
            ),
        })
    }
}
