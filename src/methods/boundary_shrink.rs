//! Boundary Shrink (Chen et al., CVPR 2023, "Boundary Unlearning"; "Boundary" in the CaMU paper):
//! for each Df sample, one FGSM step of size `bound` on a frozen copy of f_o finds the nearest
//! wrong class (argmax of f_o on the perturbed input, the true class excluded); the model is then
//! fine-tuned on Df toward those classes. Defaults: bound 0.1 (in the model's input space, which is
//! pixel space for the MNIST family), SGD lr 1e-5, momentum 0.9, 10 epochs.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct BoundaryShrink;

impl Method for BoundaryShrink {
    fn name(&self) -> &'static str {
        "boundary_shrink"
    }
    fn version(&self) -> u32 {
        1
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
            weight_decay: 0.0,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let f = ctx.forget_idx();
        // Nearest wrong class of every Df sample, from the frozen original.
        let mut targets = ctx.data.train_y.copy();
        for b in batches(&f, 256, false) {
            let bt = ctx.batch(&b, None);
            let x = bt.x.detach().set_requires_grad(true);
            let loss = ctx
                .original
                .forward(&x, false)
                .0
                .cross_entropy_for_logits(&bt.y);
            let g = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
            let adv = (&x + g.sign() * bound).detach();
            let logits = tch::no_grad(|| ctx.original.forward(&adv, false).0);
            let masked = logits.scatter_value(1, &bt.y.unsqueeze(1), f64::NEG_INFINITY);
            let wrong = masked
                .argmax(1, false)
                .to_device(tch::Device::Cpu)
                .to_kind(Kind::Int64);
            targets = targets.index_copy(0, &b, &wrong);
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
        Ok(s.outcome(json!({"bound": bound})))
    }
}
