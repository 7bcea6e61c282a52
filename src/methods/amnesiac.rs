//! Amnesiac unlearning, relabel variant (Graves et al. 2021, as public baselines implement it):
//! relabel each Df sample with a random *wrong* class, mix it with Dr, train. Defaults: 3 epochs,
//! Adam lr 1e-4.

use super::common::{ce_pass, optimizer};
use super::{Context, Method, Outcome, ParamSpec, details};
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
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 1e-4)?,
            p.f64("weight_decay", 0.0)?,
            p.usize("epochs", 3)?,
            p.usize("batch_size", 32)? as i64,
        );
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let mut opt = optimizer(&p, &model.vs, "adam", lr, wd)?;
        let labels = ctx.wrong_labels_for_forget();
        let mixed = Tensor::cat(
            &[
                ctx.forget_idx(),
                ctx.remain_subset(p.f64("remain_fraction", 1.0)?),
            ],
            0,
        );
        for e in 1..=epochs {
            ce_pass(
                ctx,
                &model,
                &mut opt,
                &mixed,
                Some(&labels),
                bs,
                &format!("amnesiac epoch {e}/{epochs}"),
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
