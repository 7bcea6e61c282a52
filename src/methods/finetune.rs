//! Fine-tuning (FT): continue training f_o on Dr only with cross-entropy, relying on catastrophic
//! forgetting of Df. Defaults as in the public baselines of Jia et al. 2023 ("Model sparsity can
//! simplify machine unlearning"): SGD lr 0.01, momentum 0.9, weight decay 5e-4, 5 epochs.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;

pub struct Finetune;

impl Method for Finetune {
    fn name(&self) -> &'static str {
        "finetune"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            weight_decay: 5e-4,
            epochs: 5,
            batch_size: 32,
        }
        .start(ctx)?;
        let idx = ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?);
        for e in 1..=s.epochs {
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &idx,
                None,
                s.batch,
                &format!("finetune epoch {e}/{}", s.epochs),
            )?;
        }
        Ok(s.outcome(json!({})))
    }
}
