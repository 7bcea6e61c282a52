//! Random labelling (RL; Golatkar et al. 2020, as the SalUn code base runs it): relabel each Df
//! sample with a random class; per epoch, one pass over relabelled Df, then one over Dr.
//! Defaults: 10 epochs, SGD lr 0.013, momentum 0.9, weight decay 5e-4.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;

pub struct RandomLabel;

impl Method for RandomLabel {
    fn name(&self) -> &'static str {
        "random_label"
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
            lr: 0.013,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let labels = ctx.random_labels_for_forget();
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?),
        );
        for e in 1..=s.epochs {
            let n = s.epochs;
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &f,
                Some(&labels),
                s.batch,
                &format!("random_label epoch {e}/{n} (Df)"),
            )?;
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &r,
                None,
                s.batch,
                &format!("random_label epoch {e}/{n} (Dr)"),
            )?;
        }
        Ok(s.outcome(json!({})))
    }
}
