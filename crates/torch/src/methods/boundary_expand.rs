//! BoundaryExpand: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::boundary_expand`.

use super::common::{ce_pass, optimizer};
use super::{Compute, Context, Outcome, details};
use crate::models::{Model, ModelSpec};
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{BoundaryExpand, BoundaryExpandParams};

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

impl Compute for BoundaryExpand {
    fn unlearn(&self, ctx: &Context<'_>, p: BoundaryExpandParams) -> Result<Outcome, crate::MlError> {
        let (epochs, bs) = (p.epochs, p.batch_size as i64);
        let k = ctx.classes();
        let augment = ctx.augment(p.augment);
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
        let mut opt = optimizer(p.optimizer, &wide.vs, p.lr, p.momentum, p.weight_decay)?;
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
            details: details(&p, json!({"augment": augment})),
        })
    }
}
