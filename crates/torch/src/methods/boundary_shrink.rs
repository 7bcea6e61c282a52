//! BoundaryShrink: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::boundary_shrink`.

use super::common::{Recipe, ce_pass};
use super::{Context, Outcome, Unlearn};
use crate::ml::batches;
use crate::models::prepare;
use camu_core::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::BoundaryShrink;

impl Unlearn for BoundaryShrink {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let bound = Params(ctx.params).f64("bound", 0.1)?;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 1e-5,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 256,
        }
        .start(ctx)?;
        let f = ctx.forget_idx();
        let (fam, arch) = (ctx.family(), ctx.original.spec.arch);
        let mut targets = ctx.data.train_y.copy();
        let mut kept = 0i64;
        for b in batches(&f, 256, false) {
            // Pixel space [0, 1]; `prepare` applies the model's own normalisation, differentiably.
            let x01 = (ctx.data.train_x.index_select(0, &b).to_kind(Kind::Float) / 255.0)
                .to_device(ctx.device)
                .set_requires_grad(true);
            let y = ctx.data.train_y.index_select(0, &b).to_device(ctx.device);
            let loss = ctx
                .original
                .forward(
                    &prepare(&(&x01 * 255.0), fam, arch, false, ctx.device),
                    false,
                )
                .0
                .cross_entropy_for_logits(&y);
            let g = Tensor::run_backward(&[loss], &[&x01], false, false).remove(0);
            let adv = ((&x01 + g.sign() * bound).detach().clamp(0.0, 1.0) * 255.0).round();
            let adv_label = tch::no_grad(|| {
                ctx.original
                    .forward(&prepare(&adv, fam, arch, false, ctx.device), false)
                    .0
                    .argmax(1, false)
            });
            kept += adv_label.eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
            targets = targets.index_copy(0, &b, &adv_label.to_device(tch::Device::Cpu));
        }
        for e in 1..=s.epochs {
            let label = format!("boundary_shrink epoch {e}/{}", s.epochs);
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &f,
                Some(&targets),
                s.batch,
                &label,
            )?;
        }
        let kept = kept as f64 / f.size()[0].max(1) as f64;
        Ok(s.outcome(json!({"bound": bound, "targets_true_class_fraction": kept})))
    }
}
