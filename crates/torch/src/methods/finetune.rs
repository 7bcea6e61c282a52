//! Finetune: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::finetune`.

use super::common::{Recipe, ce_pass};
use super::{Context, Outcome, Unlearn};
use camu_core::params::Params;
use serde_json::json;

use camu_lab::methods::Finetune;

impl Unlearn for Finetune {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 256,
        }
        .start(ctx)?;
        let augment = ctx.augment()?;
        let idx = ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?);
        for e in 1..=s.epochs {
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &idx,
                None,
                s.batch,
                augment,
                &format!("finetune epoch {e}/{}", s.epochs),
            )?;
        }
        Ok(s.outcome(json!({"augment": augment})))
    }
}
