//! NegGradPlus: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::neggrad_plus`.

use super::common::{DivergenceGuard, recipe, trainable};
use super::{Compute, Context, Outcome};
use crate::ml::batches;
use camu_core::progress::StageProgress;
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{NegGradPlus, NegGradPlusParams};

impl Compute for NegGradPlus {
    fn unlearn(&self, ctx: &Context<'_>, p: NegGradPlusParams) -> Result<Outcome, crate::MlError> {
        let (alpha, anchor, train) = (p.alpha, p.anchor, p.train_mode);
        let fbs = p.forget_batch_size as i64;
        let mut s = recipe!(p).start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let remain = ctx.remain_subset(p.remain_fraction);
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
                let ce = model.forward(&r.x, train).0.cross_entropy_for_logits(&r.y);
                let retain = if anchor > 0.0 {
                    let l2 = params.iter().zip(&w0).fold(
                        Tensor::zeros([], (Kind::Float, ctx.device)),
                        |acc, (w, w0)| acc + (w - w0).square().sum(Kind::Float),
                    );
                    ce + l2 * (anchor / 2.0)
                } else {
                    ce
                };
                let loss = retain * alpha
                    - model.forward(&f.x, train).0.cross_entropy_for_logits(&f.y) * (1.0 - alpha);
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
        Ok(s.outcome(&p, json!({"diverged_at_epoch": diverged})))
    }
}
