//! NegGrad: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::neggrad`.

use super::common::{DivergenceGuard, recipe};
use super::{Compute, Context, Outcome};
use crate::ml::batches;
use camu_core::progress::StageProgress;
use serde_json::json;

use camu_lab::methods::{NegGrad, NegGradParams};

impl Compute for NegGrad {
    fn unlearn(&self, ctx: &Context<'_>, p: NegGradParams) -> Result<Outcome, crate::MlError> {
        let mut s = recipe!(p).start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let f = ctx.forget_idx();
        let augment = ctx.augment(p.augment);
        let mut guard = DivergenceGuard::new(model, ctx.probe());
        let mut diverged = None;
        'outer: for e in 1..=epochs {
            let fbs = batches(&f, bs, true);
            let bar = StageProgress::new(
                &format!("neggrad epoch {e}/{epochs}"),
                fbs.len() as u64,
                "batches",
            );
            for (k, b) in fbs.iter().enumerate() {
                let bt = ctx.train_batch(b, None, augment);
                let loss = -model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y);
                if !guard.step(opt, &loss) {
                    tracing::warn!(
                        "neggrad diverged at epoch {e}, step {k}; keeping the last finite weights"
                    );
                    diverged = Some(e);
                    break 'outer;
                }
                bar.set_message(format!("loss {:.4}", loss.double_value(&[])));
                bar.set(k as u64 + 1);
            }
            bar.finish();
        }
        Ok(s.outcome(&p, json!({"diverged_at_epoch": diverged, "augment": augment})))
    }
}
