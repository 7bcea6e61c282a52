//! Random labelling (RL; Golatkar et al. 2020, as the SalUn code base runs it): relabel each Df
//! sample with a random class; per epoch, one pass over relabelled Df, then one over Dr.
//! Defaults: 10 epochs, SGD lr 0.013, momentum 0.9, weight decay 5e-4.

use super::common::{ce_pass, optimizer};
use super::{Context, Method, Outcome, ParamSpec, details};
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
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 0.013)?,
            p.f64("weight_decay", 5e-4)?,
            p.usize("epochs", 10)?,
            p.usize("batch_size", 32)? as i64,
        );
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let mut opt = optimizer(&p, &model.vs, "sgd", lr, wd)?;
        let labels = ctx.random_labels_for_forget();
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.f64("remain_fraction", 1.0)?),
        );
        for e in 1..=epochs {
            ce_pass(
                ctx,
                &model,
                &mut opt,
                &f,
                Some(&labels),
                bs,
                &format!("random_label epoch {e}/{epochs} (Df)"),
            )?;
            ce_pass(
                ctx,
                &model,
                &mut opt,
                &r,
                None,
                bs,
                &format!("random_label epoch {e}/{epochs} (Dr)"),
            )?;
        }
        Ok(Outcome {
            model,
            details: details(
                json!({"lr": lr, "weight_decay": wd, "epochs": epochs, "batch_size": bs}),
            ),
        })
    }
}
