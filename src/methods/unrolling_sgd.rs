//! Unrolling SGD (Thudi et al., USENIX Security 2022; "Unrolling" in the CaMU paper), single-step
//! variant. Training with SGD adds, over E epochs at learning rate lr and batch size B, about
//! -(lr * E / B) * sum over Df of grad L(w; x) to the weights; unlearning adds it back:
//!
//!   w' = w + scale * (lr * E / B) * sum_{x in Df} grad L(w; x)
//!
//! Variant implemented: the gradients are taken at the trained weights w of f_o (the initial
//! weights are not kept), in one first-order step over all of Df (the public code,
//! cleverhans-lab/unrolling-sgd, does it for one batch of a model trained with plain SGD).
//! lr, E and B are the original model's own: read from its training record (`config` in its
//! `metrics.json`), overridable with `with`; a model without a record needs them given. The
//! original here is trained with Adam, not SGD, so lr * E / B is the SGD-equivalent step the
//! method assumes, not an exact inverse of the training.

use super::common::{pass, trainable};
use super::{Context, Method, Outcome, ParamSpec, details};
use crate::params::Params;
use serde_json::json;

pub struct UnrollingSgd;

impl Method for UnrollingSgd {
    fn name(&self) -> &'static str {
        "unrolling_sgd"
    }
    fn version(&self) -> u32 {
        // 2: lr, epochs and batch size from the original's training record (v1: fixed 20 epochs).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "cleverhans-lab/unrolling-sgd (single-step first-order correction)",
            defaults: &[
                (
                    "lr",
                    "the original's recorded lr",
                    "the original model's training record (`config.lr`)",
                ),
                (
                    "epochs",
                    "the original's recorded epochs",
                    "the original model's training record (`config.epochs`)",
                ),
                (
                    "batch_size",
                    "the original's recorded batch size",
                    "the original model's training record (`config.batch_size`)",
                ),
                ("scale", "1", "the formula as published"),
            ],
            deviations: &[
                "One correction over all of Df at the trained weights; the public code does it for one batch.",
                "The original here is trained with Adam, not SGD: lr * E / B is the SGD-equivalent step the method assumes.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "scale"],
            ints: &["epochs", "batch_size"],
            strs: &[],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let recorded = ctx
            .original_record
            .get("config")
            .and_then(|c| c.as_object());
        let from_record = |k: &str| recorded.and_then(|c| c.get(k)).and_then(|v| v.as_f64());
        let need = |k: &str| -> Result<f64, String> {
            match p.opt_f64(k)? {
                Some(v) => Ok(v),
                None => from_record(k).ok_or_else(|| {
                    format!("the original model's training record has no `{k}`: give it in `with`")
                }),
            }
        };
        let (lr, scale, epochs, bs) = (
            need("lr")?,
            p.f64("scale", 1.0)?,
            need("epochs")? as usize,
            (need("batch_size")? as i64).max(1),
        );
        let model = ctx.original.duplicate().map_err(|e| e.to_string())?;
        let params = trainable(&model);
        let mut sum: Vec<tch::Tensor> = params.iter().map(|(_, t)| t.zeros_like()).collect();
        pass("unrolling: Df gradients", &ctx.forget_idx(), 256, |b| {
            let bt = ctx.batch(b, None);
            for (_, t) in &params {
                let mut g = t.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            // Summed (not mean) loss: its gradient is the sum of per-sample gradients.
            let loss = model
                .forward(&bt.x, false)
                .0
                .cross_entropy_loss::<tch::Tensor>(&bt.y, None, tch::Reduction::Sum, -100, 0.0);
            loss.backward();
            tch::no_grad(|| {
                for ((_, t), s) in params.iter().zip(sum.iter_mut()) {
                    *s += t.grad();
                }
            });
            Ok(loss.double_value(&[]) / b.size()[0] as f64)
        })?;
        let step = scale * lr * epochs as f64 / bs as f64;
        tch::no_grad(|| {
            for ((_, t), s) in params.iter().zip(&sum) {
                let mut t = t.shallow_clone();
                let _ = t.g_add_(&(s * step));
            }
        });
        Ok(Outcome {
            model,
            details: details(json!({
                "lr": lr, "epochs": epochs, "batch_size": bs, "scale": scale, "step": step,
                "from_original_record": recorded.is_some(),
            })),
        })
    }
}
