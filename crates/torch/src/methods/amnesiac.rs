//! Amnesiac: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::amnesiac`.

use super::common::{Recipe, ce_pass};
use super::{Context, Outcome, Unlearn};
use camu_core::params::Params;
use serde_json::json;
use tch::Tensor;

use camu_lab::methods::Amnesiac;

impl Unlearn for Amnesiac {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let mut s = Recipe {
            optimizer: "adam",
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 0.0,
            epochs: 3,
            batch_size: 128,
        }
        .start(ctx)?;
        let labels = ctx.wrong_labels_for_forget();
        let remain = ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?);
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
        Ok(s.outcome(json!({})))
    }
}
