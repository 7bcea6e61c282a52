//! UnrollingSgd: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::unrolling_sgd`.

use super::common::{pass, trainable};
use super::{Compute, Context, Outcome, details};
use serde_json::json;

use camu_lab::methods::{UnrollingSgd, UnrollingSgdParams};

impl Compute for UnrollingSgd {
    fn unlearn(&self, ctx: &Context<'_>, mut p: UnrollingSgdParams) -> Result<Outcome, crate::MlError> {
        let recorded = ctx
            .original_record
            .get("config")
            .and_then(|c| c.as_object());
        let from_record = |k: &str| recorded.and_then(|c| c.get(k)).and_then(|v| v.as_f64());
        let need = |given: Option<f64>, k: &str| -> Result<f64, crate::MlError> {
            given
                .or_else(|| from_record(k))
                .ok_or_else(|| crate::MlError::MissingRecord { key: k.to_string() })
        };
        let lr = need(p.lr, "lr")?;
        let epochs = need(p.epochs.map(|e| e as f64), "epochs")? as usize;
        let batch = (need(p.batch_size.map(|b| b as f64), "batch_size")? as usize).max(1);
        (p.lr, p.epochs, p.batch_size) = (Some(lr), Some(epochs), Some(batch));
        let (scale, bs) = (p.scale, batch as i64);
        let model = ctx.original.duplicate().map_err(crate::MlError::from)?;
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
            details: details(&p, json!({
                "step": step,
                "from_original_record": recorded.is_some(),
            })),
        })
    }
}
