//! Fine-tuning (FT): continue training f_o on Dr only with cross-entropy, relying on catastrophic
//! forgetting of Df. Defaults as in the public baselines of Jia et al. 2023 ("Model sparsity can
//! simplify machine unlearning"): SGD lr 0.01, momentum 0.9, weight decay 5e-4, 5 epochs.

use super::common::{ce_pass, optimizer};
use super::{Context, Method, Outcome, ParamSpec, details};
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
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 0.01)?,
            p.f64("weight_decay", 5e-4)?,
            p.usize("epochs", 5)?,
            p.usize("batch_size", 32)? as i64,
        );
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let mut opt = optimizer(&p, &model.vs, "sgd", lr, wd)?;
        let idx = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        for e in 1..=epochs {
            ce_pass(
                ctx,
                &model,
                &mut opt,
                &idx,
                None,
                bs,
                &format!("finetune epoch {e}/{epochs}"),
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
