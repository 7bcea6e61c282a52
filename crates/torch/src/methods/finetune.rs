//! Finetune: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::finetune`.

use super::common::{ce_pass, recipe};
use super::{Compute, Context, Outcome};
use serde_json::json;

use camu_lab::methods::{Finetune, FinetuneParams};

impl Compute for Finetune {
    fn unlearn(&self, ctx: &Context<'_>, p: FinetuneParams) -> Result<Outcome, crate::MlError> {
        let mut s = recipe!(p).start(ctx)?;
        let augment = ctx.augment(p.augment);
        let idx = ctx.remain_subset(p.remain_fraction);
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
        Ok(s.outcome(&p, json!({"augment": augment})))
    }
}
