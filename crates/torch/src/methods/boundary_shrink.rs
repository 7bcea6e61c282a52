//! BoundaryShrink: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::boundary_shrink`.

use super::common::{pass, recipe};
use super::{Compute, Context, Outcome};
use crate::models::{normalize, pixels};
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{BoundaryShrink, BoundaryShrinkParams};

impl Compute for BoundaryShrink {
    fn unlearn(&self, ctx: &Context<'_>, p: BoundaryShrinkParams) -> Result<Outcome, crate::MlError> {
        let bound = p.bound;
        let augment = ctx.augment(p.augment);
        let mut s = recipe!(p).start(ctx)?;
        let f = ctx.forget_idx();
        let (fam, arch, dev) = (ctx.family(), ctx.original.spec.arch, ctx.device);
        // Per epoch: the fraction of Df whose target stayed its true class (the attack failed).
        let mut kept_per_epoch = Vec::with_capacity(s.epochs);
        for e in 1..=s.epochs {
            let (mut kept, mut seen) = (0i64, 0i64);
            let (model, opt) = (&s.model, &mut s.opt);
            pass(
                &format!("boundary_shrink epoch {e}/{}", s.epochs),
                &f,
                s.batch,
                |b| {
                    // The batch as trained (a fresh crop and flip on CIFAR), in pixel space [0, 1].
                    let x01 = pixels(
                        &ctx.data.train_x.index_select(0, b),
                        fam,
                        arch,
                        augment,
                        dev,
                    );
                    let y = ctx.data.train_y.index_select(0, b).to_device(dev);
                    let xg = x01.detach().set_requires_grad(true);
                    let attack_loss = ctx
                        .original
                        .forward(&normalize(&xg, fam), false)
                        .0
                        .cross_entropy_for_logits(&y);
                    let g = Tensor::run_backward(&[attack_loss], &[&xg], false, false).remove(0);
                    let adv = ((&x01 + g.sign() * bound).clamp(0.0, 1.0) * 255.0).round() / 255.0;
                    let target = tch::no_grad(|| {
                        ctx.original
                            .forward(&normalize(&adv, fam), false)
                            .0
                            .argmax(1, false)
                    });
                    kept += target.eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
                    seen += y.size()[0];
                    let loss = model
                        .forward(&normalize(&x01, fam), true)
                        .0
                        .cross_entropy_for_logits(&target);
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
            if seen > 0 {
                kept_per_epoch.push(kept as f64 / seen as f64);
            }
        }
        let kept = kept_per_epoch.first().copied();
        Ok(s.outcome(&p, json!({
            "augment": augment,
            "targets_true_class_fraction": kept,
            "targets_true_class_fraction_per_epoch": kept_per_epoch,
        })))
    }
}
