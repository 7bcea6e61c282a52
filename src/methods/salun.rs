//! SalUn (Fan et al., ICLR 2024, "Saliency Unlearning"): a weight saliency mask keeps the top
//! `sparsity` fraction of parameters by |sum over Df batches of the gradient of the batch-mean
//! -CE| (model in eval mode, one global ranking over all parameters); then random-label training
//! (each epoch: Df with labels redrawn per batch, then Dr) where gradients outside the mask are
//! zeroed and masked-out weights are restored to their starting values after every step, since
//! weight decay and momentum would otherwise still move them.
//!
//! Reference: OPTML-Group/Unlearn-Saliency `Classification/generate_mask.py` (batch 256, top 50%
//! = `with_0.5.pt`), `unlearn/RL.py` with `_apply_mask_to_grads` and `_restore_masked_params`
//! (the restore is in the repository since commit a6e89fd, "Fix weight decay"), the README's
//! `--unlearn RL --unlearn_epochs 10 --unlearn_lr 0.013 --mask_path mask/with_0.5.pt`, and
//! `arg_parser.py`'s SGD momentum 0.9, weight decay 5e-4, batch 256. The reference also masks the
//! momentum buffer; here the masked-out weights are reset after every step, which makes that
//! buffer irrelevant to them.

use super::common::{Recipe, Relabeler, pass, trainable};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;
use tch::Tensor;

pub struct Salun;

impl Method for Salun {
    fn name(&self) -> &'static str {
        "salun"
    }
    fn version(&self) -> u32 {
        // 2: labels redrawn per batch, batch 256, saliency from batch-mean losses, mask by rank.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "OPTML-Group/Unlearn-Saliency `Classification/generate_mask.py`, `unlearn/RL.py` (`_apply_mask_to_grads`, `_restore_masked_params`), README",
            defaults: &[
                ("sparsity", "0.5", "README `--mask_path mask/with_0.5.pt`"),
                ("optimizer", "sgd", "`impl.py`"),
                ("lr", "0.013", "README `--unlearn_lr 0.013`"),
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
                ("epochs", "10", "README `--unlearn_epochs 10`"),
                (
                    "batch_size",
                    "256",
                    "OPTML-Group/Unlearn-Saliency `Classification/arg_parser.py`",
                ),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &[
                "The reference also multiplies the momentum buffer by the mask; masked-out weights are reset after every step here, which makes that buffer irrelevant to them.",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "sparsity",
                "lr",
                "momentum",
                "weight_decay",
                "remain_fraction",
            ],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let keep = p.f64("sparsity", 0.5)?.clamp(0.0, 1.0);
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.013,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 256,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let params = trainable(model);
        // Saliency: |sum over Df batches of d(-mean CE)/dw|.
        let mut sal: Vec<Tensor> = params.iter().map(|(_, t)| t.zeros_like()).collect();
        pass("salun: saliency", &ctx.forget_idx(), 256, |b| {
            let bt = ctx.batch(b, None);
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
            ctx.remain_subset(p.f64("remain_fraction", 1.0)?),
        );
        let mut masked_step = |b: &Tensor, forget: bool| -> Result<f64, String> {
            let bt = ctx.batch(b, None);
            let y = if forget {
                relabel.draw(b, ctx.device)
            } else {
                bt.y
            };
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
            pass(&format!("salun epoch {e}/{epochs} (Df)"), &f, bs, |b| {
                masked_step(b, true)
            })?;
            pass(&format!("salun epoch {e}/{epochs} (Dr)"), &r, bs, |b| {
                masked_step(b, false)
            })?;
        }
        Ok(s.outcome(json!({
            "sparsity": keep, "threshold": threshold,
            "relabel_change_rate": relabel.change_rate(),
        })))
    }
}
