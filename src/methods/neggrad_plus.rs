//! NegGrad+ (Kurmanji et al., NeurIPS 2023, "Towards Unbounded Machine Unlearning"): per step,
//! alpha * (CE(f(x_r), y_r) + anchor / 2 * ||w - w_0||^2) - (1 - alpha) * CE(f(x_f), y_f), with
//! w_0 the original weights, over one pass of the retain loader per epoch with the forget loader
//! cycled alongside it, model in eval mode.
//!
//! Reference: meghdadk/SCRUB, `small_scale_unlearning.ipynb`: `run_neggrad_epoch` and
//! `negative_grad` (`ng_alpha` 0.95, `ng_epochs` 10, `ng_lr` 0.01), the optimizer
//! `torch.optim.SGD(lr, weight_decay=0)` (no momentum, no weight decay), `l2_penalty` with the
//! notebook's `--weight-decay 0.1` as `anchor`, retain batch 128 (`--batch-size`) and forget
//! batch 64. `itertools.cycle` replays the forget loader's first pass in the same order for the
//! rest of an epoch; the forget set is reshuffled each epoch. Both are done here.
//!
//! Deviation: every step is guarded; at the first step whose loss, weights or probe outputs would
//! not be finite, the method stops on the last finite weights and records `diverged_at_epoch`.

use super::common::{DivergenceGuard, Recipe, trainable};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::params::Params;
use crate::progress::StageProgress;
use serde_json::json;
use tch::{Kind, Tensor};

pub struct NegGradPlus;

impl Method for NegGradPlus {
    fn name(&self) -> &'static str {
        "neggrad_plus"
    }
    fn version(&self) -> u32 {
        // 3: the SCRUB notebook's plain SGD, L2 anchor to w_0, batches 128/64, eval mode.
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "meghdadk/SCRUB `small_scale_unlearning.ipynb`: `run_neggrad_epoch`, `negative_grad`, `l2_penalty`",
            defaults: &[
                ("alpha", "0.95", "`args.ng_alpha`"),
                (
                    "anchor",
                    "0.1",
                    "`l2_penalty(model, model_init, args.weight_decay)` with `--weight-decay 0.1`",
                ),
                (
                    "optimizer",
                    "sgd",
                    "`torch.optim.SGD(lr=lr, weight_decay=0.0)`",
                ),
                ("lr", "0.01", "`args.ng_lr`"),
                ("momentum", "0", "SGD without momentum"),
                ("weight_decay", "0", "`weight_decay=0.0` in the optimizer"),
                ("epochs", "10", "`args.ng_epochs`"),
                (
                    "batch_size",
                    "128",
                    "retain loader rebuilt with `args.batch_size` 128",
                ),
                ("forget_batch_size", "64", "forget loader, batch 64"),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &["Every step is guarded as for neggrad."],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "alpha",
                "anchor",
                "lr",
                "momentum",
                "weight_decay",
                "remain_fraction",
            ],
            ints: &["epochs", "batch_size", "forget_batch_size"],
            strs: &["optimizer"],
        }
    }
    fn validate(&self, params: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
        self.spec().check(params)?;
        let p = Params(params);
        if p.opt_i64("forget_batch_size")? == Some(0) {
            return Err("parameter `forget_batch_size` must be positive".into());
        }
        match p.opt_f64("alpha")? {
            Some(a) if a > 1.0 => Err("parameter `alpha` must be in [0, 1]".into()),
            _ => Ok(()),
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let alpha = p.f64("alpha", 0.95)?;
        let anchor = p.f64("anchor", 0.1)?;
        let fbs = p.usize("forget_batch_size", 64)?.max(1) as i64;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            epochs: 10,
            batch_size: 128,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let remain = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        let forget = ctx.forget_idx();
        let params: Vec<Tensor> = trainable(model).into_iter().map(|(_, t)| t).collect();
        let w0: Vec<Tensor> = trainable(ctx.original)
            .into_iter()
            .map(|(_, t)| t.detach().copy())
            .collect();
        let mut guard = DivergenceGuard::new(model, ctx.probe());
        let mut diverged = None;
        'outer: for e in 1..=epochs {
            let fb = batches(&forget, fbs, true);
            let rbs = batches(&remain, bs, true);
            let bar = StageProgress::new(
                &format!("neggrad+ epoch {e}/{epochs}"),
                rbs.len() as u64,
                "batches",
            );
            for (k, rb) in rbs.iter().enumerate() {
                let r = ctx.batch(rb, None);
                let f = ctx.batch(&fb[k % fb.len()], None);
                let l2 = params.iter().zip(&w0).fold(
                    Tensor::zeros([], (Kind::Float, ctx.device)),
                    |acc, (w, w0)| acc + (w - w0).square().sum(Kind::Float),
                );
                let retain = model.forward(&r.x, false).0.cross_entropy_for_logits(&r.y)
                    + l2 * (anchor / 2.0);
                let loss = retain * alpha
                    - model.forward(&f.x, false).0.cross_entropy_for_logits(&f.y) * (1.0 - alpha);
                if !guard.step(opt, &loss) {
                    tracing::warn!(
                        "neggrad+ diverged at epoch {e}, step {k}; keeping the last finite weights"
                    );
                    diverged = Some(e);
                    break 'outer;
                }
                if k % 50 == 0 {
                    bar.set_message(format!("loss {:.4}", loss.double_value(&[])));
                }
                bar.set(k as u64 + 1);
            }
            bar.finish();
        }
        Ok(s.outcome(json!({
            "alpha": alpha, "anchor": anchor, "forget_batch_size": fbs,
            "diverged_at_epoch": diverged,
        })))
    }
}
