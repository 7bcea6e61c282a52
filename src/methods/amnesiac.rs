//! Amnesiac unlearning, relabel variant (Graves et al. 2021, as public baselines implement it):
//! relabel each Df sample with a random *wrong* class, mix it with Dr, train. Defaults: 3 epochs,
//! Adam lr 1e-4.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;
use tch::Tensor;

pub struct Amnesiac;

impl Method for Amnesiac {
    fn name(&self) -> &'static str {
        "amnesiac"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let mut s = Recipe {
            optimizer: "adam",
            lr: 1e-4,
            weight_decay: 0.0,
            epochs: 3,
            batch_size: 32,
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
                &format!("amnesiac epoch {e}/{}", s.epochs),
            )?;
        }
        Ok(s.outcome(json!({})))
    }
}
