//! Boundary Expanding (Chen et al., CVPR 2023): widen the output layer by one shadow class (its
//! row freshly initialised), train Df toward it in train mode, then remove the shadow neuron, so
//! Df's mass falls on the remaining classes.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_ex.py`
//! (`expand_model`, target `num_classes`), through `unlearn/impl.py` with `arg_parser.py`'s SGD
//! momentum 0.9, weight decay 5e-4, batch 256. lr 1e-5 and 10 epochs are the paper's (the
//! repository recommends none). Deviation: that code keeps the (K+1)-way head and evaluates with
//! it; the paper prunes the shadow neuron after training, as done here, so every method is scored
//! as a K-class model.

use super::common::{ce_pass, optimizer};
use super::{Context, Method, Outcome, ParamSpec, details};
use crate::models::{Model, ModelSpec};
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct BoundaryExpand;

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

impl Method for BoundaryExpand {
    fn name(&self) -> &'static str {
        "boundary_expand"
    }
    fn version(&self) -> u32 {
        // 2: batch 256 and weight decay 5e-4 as OPTML (v1: batch 32, no weight decay).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency `Classification/unlearn/boundary_ex.py` via `unlearn/impl.py`",
            defaults: &[
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
            deviations: &[
                "The shadow neuron is removed after training, as the paper describes; the repository keeps the (K+1)-way head and evaluates with it.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["lr", "momentum", "weight_decay"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (lr, wd, epochs, bs) = (
            p.f64("lr", 1e-5)?,
            p.f64("weight_decay", 5e-4)?,
            p.usize("epochs", 10)?,
            p.usize("batch_size", 256)?.max(1) as i64,
        );
        let k = ctx.classes();
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
                &format!("boundary_expand epoch {e}/{epochs}"),
            )?;
        }
        let model = Model::new(spec, ctx.device);
        copy_weights(&wide, &model, k);
        Ok(Outcome {
            model,
            details: details(json!({
                "optimizer": p.str("optimizer", "sgd")?, "momentum": p.f64("momentum", 0.9)?,
                "lr": lr, "weight_decay": wd, "epochs": epochs, "batch_size": bs,
            })),
        })
    }
}
