//! BoundaryExpand: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::boundary_expand`.

use super::common::{ce_pass, optimizer};
use super::{Context, Outcome, Unlearn, details};
use crate::models::{Model, ModelSpec};
use camu_core::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::BoundaryExpand;

/// Copies `from` into `to`; the head (first `rows` rows of its weight and bias) partially.
fn copy_weights(from: &Model, to: &Model, rows: i64) {
    let head = from.head();
    let src = from.vs.variables();
    tch::no_grad(|| {
        for (name, mut dst) in to.vs.variables() {
            let Some(s) = src.get(&name) else { continue };
            if name.starts_with(&format!("{head}.")) {
                dst.narrow(0, 0, rows).copy_(&s.narrow(0, 0, rows));
            } else {
                dst.copy_(s);
            }
        }
    });
}

impl Unlearn for BoundaryExpand {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 0.01)?,
            p.f64("weight_decay", 5e-4)?,
            p.usize("epochs", 10)?,
            p.usize("batch_size", 256)?.max(1) as i64,
        );
        let k = ctx.classes();
        let augment = ctx.augment()?;
        tch::manual_seed(ctx.seed);
        let spec = ctx.original.spec.clone();
        let wide = Model::new(
            ModelSpec {
                classes: k + 1,
                ..spec.clone()
            },
            ctx.device,
        );
        copy_weights(ctx.original, &wide, k);
        let shadow = Tensor::full([ctx.data.meta.n_train], k, (Kind::Int64, tch::Device::Cpu));
        let mut opt = optimizer(&p, &wide.vs, "sgd", lr, wd)?;
        for e in 1..=epochs {
            ce_pass(
                ctx,
                &wide,
                &mut opt,
                &ctx.forget_idx(),
                Some(&shadow),
                bs,
                augment,
                &format!("boundary_expand epoch {e}/{epochs}"),
            )?;
        }
        let model = Model::new(spec, ctx.device);
        copy_weights(&wide, &model, k);
        Ok(Outcome {
            model,
            details: details(json!({
                "optimizer": p.str("optimizer", "sgd")?, "momentum": p.f64("momentum", 0.9)?,
                "lr": lr, "weight_decay": wd, "epochs": epochs, "batch_size": bs, "augment": augment,
            })),
        })
    }
}
