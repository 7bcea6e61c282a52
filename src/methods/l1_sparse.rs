//! l1-sparse unlearning (Jia et al., NeurIPS 2023, "Model Sparsity Can Simplify Machine
//! Unlearning"): fine-tune on Dr with CE + alpha_t * ||w||_1, alpha_t decaying linearly from
//! `alpha` to 0 over the run. Defaults: alpha 5e-4, 10 epochs, SGD lr 0.01, momentum 0.9,
//! weight decay 5e-4.

use super::common::{Recipe, pass, trainable};
use super::{Context, Method, Outcome, ParamSpec};
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
        let alpha = p.f64("alpha", 5e-4)?;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let params = trainable(model);
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
        Ok(s.outcome(json!({"alpha": alpha})))
    }
}
