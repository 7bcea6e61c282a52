//! Amnesiac: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::amnesiac`.

use super::common::{ce_pass, recipe};
use super::{Compute, Context, Outcome};
use serde_json::json;
use tch::Tensor;

use camu_lab::methods::{Amnesiac, AmnesiacParams};

impl Compute for Amnesiac {
    fn unlearn(&self, ctx: &Context<'_>, p: AmnesiacParams) -> Result<Outcome, crate::MlError> {
        let mut s = recipe!(p).start(ctx)?;
        let labels = ctx.wrong_labels_for_forget();
        let remain = ctx.remain_subset(p.remain_fraction);
        let mixed = Tensor::cat(&[ctx.forget_idx(), remain], 0);
        for e in 1..=s.epochs {
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &mixed,
                Some(&labels),
                s.batch,
                false,
                &format!("amnesiac epoch {e}/{}", s.epochs),
            )?;
        }
        Ok(s.outcome(&p, json!({})))
    }
}
