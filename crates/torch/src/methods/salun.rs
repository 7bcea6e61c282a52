//! Salun: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::salun`.

use super::common::{Relabeler, pass, recipe, trainable};
use super::{Compute, Context, Outcome};
use serde_json::json;
use tch::Tensor;

use camu_lab::methods::{RelabelPreset, Salun, SalunParams};

impl Compute for Salun {
    fn unlearn(&self, ctx: &Context<'_>, p: SalunParams) -> Result<Outcome, crate::MlError> {
        let keep = p.sparsity;
        let mut s = recipe!(p).start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let params = trainable(model);
        let augment = ctx.augment(p.augment);
        // Saliency: |sum over Df batches of d(-mean CE)/dw|.
        let mut sal: Vec<Tensor> = params.iter().map(|(_, t)| t.zeros_like()).collect();
        pass("salun: saliency", &ctx.forget_idx(), 256, |b| {
            let bt = ctx.train_batch(b, None, augment);
            for (_, t) in &params {
                let mut g = t.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            let loss = -model
                .forward(&bt.x, false)
                .0
                .cross_entropy_for_logits(&bt.y);
            loss.backward();
            tch::no_grad(|| {
                for ((_, t), s) in params.iter().zip(sal.iter_mut()) {
                    *s += t.grad();
                }
            });
            Ok(loss.double_value(&[]))
        })?;
        // The top floor(n * sparsity) by rank, ties broken by position, as the reference's
        // argsort: exactly that many weights, even where saliencies tie.
        let flat = Tensor::cat(
            &sal.iter()
                .map(|s| s.abs().flatten(0, -1))
                .collect::<Vec<_>>(),
            0,
        );
        let n = flat.size()[0];
        let k = ((n as f64) * keep).floor() as i64;
        let mut flat_mask = flat.zeros_like();
        let threshold = if k == 0 {
            f64::INFINITY
        } else {
            let (vals, idx) = flat.topk(k, 0, true, true);
            let _ = flat_mask.index_fill_(0, &idx, 1.0);
            vals.get(k - 1).double_value(&[])
        };
        let mut masks = Vec::with_capacity(sal.len());
        let mut at = 0;
        for s in &sal {
            let len = s.numel() as i64;
            masks.push(flat_mask.narrow(0, at, len).view_as(s));
            at += len;
        }
        let start: Vec<Tensor> = params.iter().map(|(_, t)| t.detach().copy()).collect();
        let mut relabel = Relabeler::new(ctx);
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.remain_fraction),
        );
        let preset = RelabelPreset::resolve(p.preset, &ctx.data.meta.name);
        // One masked step on batch `b`: labels `y`, else the batch's own.
        let mut masked_step = |b: &Tensor, y: Option<Tensor>| -> Result<f64, crate::MlError> {
            let bt = ctx.train_batch(b, None, augment);
            let y = y.unwrap_or(bt.y);
            let loss = model.forward(&bt.x, true).0.cross_entropy_for_logits(&y);
            opt.zero_grad();
            loss.backward();
            tch::no_grad(|| {
                for ((_, t), m) in params.iter().zip(&masks) {
                    let mut g = t.grad();
                    if g.defined() {
                        let _ = g.g_mul_(m);
                    }
                }
            });
            opt.step();
            tch::no_grad(|| {
                for (((_, t), m), s) in params.iter().zip(&masks).zip(&start) {
                    let mut t = t.shallow_clone();
                    let restored = &t * m + s * (1.0 - m);
                    t.copy_(&restored);
                }
            });
            Ok(loss.double_value(&[]))
        };
        for e in 1..=epochs {
            match preset {
                RelabelPreset::Cifar10 => {
                    pass(&format!("salun epoch {e}/{epochs} (Df)"), &f, bs, |b| {
                        masked_step(b, Some(relabel.draw(b, ctx.device)))
                    })?;
                    pass(&format!("salun epoch {e}/{epochs} (Dr)"), &r, bs, |b| {
                        masked_step(b, None)
                    })?;
                }
                RelabelPreset::Cifar100 => {
                    let labels = relabel.relabelled(ctx, &f);
                    let both = Tensor::cat(&[&f, &r], 0);
                    pass(
                        &format!("salun epoch {e}/{epochs} (Df+Dr)"),
                        &both,
                        bs,
                        |b| masked_step(b, Some(labels.index_select(0, b).to_device(ctx.device))),
                    )?;
                }
            }
        }
        Ok(s.outcome(&p, json!({
            "threshold": threshold, "preset": preset.name(),
            "relabel_change_rate": relabel.change_rate(), "augment": augment,
        })))
    }
}
