//! Boundary Shrink (Chen et al., CVPR 2023, "Boundary Unlearning"; "Boundary" in the CaMU paper):
//! for each Df sample, one FGSM step of size `bound` in pixel space on a frozen copy of f_o (eval
//! mode, CE on the true label), the perturbed image clamped to [0, 1] and rounded to 8-bit levels;
//! its target is f_o's argmax on that image, which stays the true class where the attack fails.
//! The model is then fine-tuned on the clean Df images toward those targets, in train mode.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_sh.py`
//! (`bound = 0.1`, `x_adv = discretize(torch.clamp(x_adv, 0.0, 1.0))`,
//! `adv_label = torch.argmax(test_model(image_adv), dim=1)`), run through `unlearn/impl.py` with
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. That repository recommends
//! no lr or epochs for this method; lr 1e-5 and 10 epochs are the Boundary Unlearning paper's.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::models::prepare;
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct BoundaryShrink;

impl Method for BoundaryShrink {
    fn name(&self) -> &'static str {
        "boundary_shrink"
    }
    fn version(&self) -> u32 {
        // 2: target = argmax over all classes, clamped and discretised attack, batch 256, wd 5e-4.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_sh.py` via `unlearn/impl.py`",
            defaults: &[
                ("bound", "0.1", "`bound = 0.1` in `boundary_sh.py`"),
                ("optimizer", "sgd", "`impl.py`"),
                (
                    "lr",
                    "0.00001",
                    "Boundary Unlearning paper (the repository recommends none)",
                ),
                (
                    "momentum",
                    "0.9",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                (
                    "weight_decay",
                    "0.0005",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                ("epochs", "10", "Boundary Unlearning paper"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["bound", "lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
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
