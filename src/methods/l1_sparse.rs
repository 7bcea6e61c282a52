//! l1-sparse unlearning (Jia et al., NeurIPS 2023, "Model Sparsity Can Simplify Machine
//! Unlearning"): fine-tune on Dr with CE + alpha_e * ||w||_1 (all parameters, not normalised),
//! alpha_e = alpha * (1 - e / E) for epoch e = 0..E-1: it decays linearly per epoch and is still
//! alpha / E in the last epoch.
//!
//! Reference: OPTML-Group/Unlearn-Sparse `unlearn/FT.py` (`FT_l1`, which `FT_prune` calls;
//! `current_alpha = args.alpha * (1 - epoch / (args.unlearn_epochs - args.no_l1_epochs))` with
//! `no_l1_epochs` 0), the README's `--unlearn FT_prune --unlearn_lr 0.01 --unlearn_epochs 10`,
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. The README leaves alpha
//! open (`${alpha}`; the parser's generic default is 0.2); 5e-4 is the paper's value for
//! l1-sparse unlearning.

use super::common::{Recipe, pass, trainable};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct L1Sparse;

/// The reference's per-epoch weight of the l1 term (`epoch` counts from 0).
pub fn alpha_at(alpha: f64, epoch: usize, epochs: usize) -> f64 {
    if epochs == 0 {
        return alpha;
    }
    alpha * (1.0 - epoch as f64 / epochs as f64)
}

impl Method for L1Sparse {
    fn name(&self) -> &'static str {
        "l1_sparse"
    }
    fn version(&self) -> u32 {
        // 2: alpha decays per epoch (v1: per step, to 0); batch 256.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Sparse `unlearn/FT.py` (`FT_l1`, called by `FT_prune`); README command for l1-sparse",
            defaults: &[
                (
                    "alpha",
                    "0.0005",
                    "the paper's gamma (the README leaves `${alpha}` open)",
                ),
                ("optimizer", "sgd", "`impl.py`"),
                ("lr", "0.01", "README `--unlearn_lr 0.01`"),
                (
                    "momentum",
                    "0.9",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                (
                    "weight_decay",
                    "0.0005",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                ("epochs", "10", "README `--unlearn_epochs 10`"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Sparse `arg_parser.py`",
                ),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let alpha = p.f64("alpha", 5e-4)?;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 256,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let params = trainable(model);
        let r = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        let mut schedule = Vec::with_capacity(epochs);
        for e in 0..epochs {
            let a = alpha_at(alpha, e, epochs);
            schedule.push(a);
            pass(
                &format!("l1_sparse epoch {}/{epochs}", e + 1),
                &r,
                bs,
                |b| {
                    let bt = ctx.batch(b, None);
                    let l1 = params.iter().fold(
                        Tensor::zeros([], (Kind::Float, ctx.device)),
                        |acc, (_, t)| acc + t.abs().sum(Kind::Float),
                    );
                    let loss =
                        model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y) + l1 * a;
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
        }
        Ok(s.outcome(json!({"alpha": alpha, "alpha_per_epoch": schedule})))
    }
}

#[cfg(test)]
mod tests {
    use super::alpha_at;

    #[test]
    fn alpha_decays_per_epoch_and_never_reaches_zero() {
        let a: Vec<f64> = (0..10).map(|e| alpha_at(1.0, e, 10)).collect();
        assert_eq!(a[0], 1.0);
        assert!((a[9] - 0.1).abs() < 1e-12, "{a:?}");
        assert!(a.windows(2).all(|w| w[1] < w[0]));
    }
}
