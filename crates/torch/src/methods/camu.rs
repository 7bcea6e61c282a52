//! Camu: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::camu`.

use super::{Compute, Context, Outcome};
use crate::ml::{batches, idx_tensor};
use crate::models::prepare;
use crate::train::adam;
use camu_core::progress::StageProgress;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use camu_lab::methods::{Camu, CamuLoop, CamuParams, camu_reference};



/// KL_sum(p || q) over batch and embedding dimensions, from log-probabilities; p carries no
/// gradient.
fn kl_sum(log_p: &Tensor, log_q: &Tensor) -> Tensor {
    (log_p.exp() * (log_p - log_q)).sum(log_p.kind())
}

/// f_o's embeddings of `x`, log-softmaxed, in eval mode without gradients, in chunks.
fn log_softmax_emb(f_o: &crate::models::Model, x: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let parts: Vec<Tensor> = x
            .split(256, 0)
            .iter()
            .map(|c| f_o.forward(c, false).1.log_softmax(1, None))
            .collect();
        Tensor::cat(&parts, 0)
    })
}

/// `pick` of f_n's (logits, embedding) for `a` and for `b`, in train mode: one forward over both
/// batches when `fused` (exact without batch norm), else one each.
fn forward_pair(
    f_n: &crate::models::Model,
    a: &Tensor,
    b: &Tensor,
    fused: bool,
    pick: impl Fn((Tensor, Tensor)) -> Tensor,
) -> (Tensor, Tensor) {
    if fused {
        let out = pick(f_n.forward(&Tensor::cat(&[a, b], 0), true));
        let n = a.size()[0];
        (out.narrow(0, 0, n), out.narrow(0, n, b.size()[0]))
    } else {
        (pick(f_n.forward(a, true)), pick(f_n.forward(b, true)))
    }
}

impl Compute for Camu {
    fn unlearn(&self, ctx: &Context<'_>, mut p: CamuParams) -> Result<Outcome, crate::MlError> {
        let (ep, ilr, klr) = camu_reference(ctx.family(), ctx.random_removal());
        let epochs = *p.impair_epochs.get_or_insert(ep);
        let impair_lr = *p.impair_lr.get_or_insert(ilr);
        let kl_lr = *p.kl_lr.get_or_insert(klr);
        let (wd, bs) = (p.weight_decay, p.batch_size as i64);
        let (w_kr, w_kf) = (p.kl_weight_remain, p.kl_weight_forget);
        let (w_cr, w_cf) = (p.ce_weight_remain, p.ce_weight_forget);
        let literal = p.loop_ == CamuLoop::Literal;
        let (family, arch, dev, k) = (
            ctx.family(),
            ctx.original.spec.arch,
            ctx.device,
            ctx.classes(),
        );
        let data = ctx.data;
        // In the model's precision (float; double in the test that checks the fast loop exactly).
        let prep = |x: &Tensor| prepare(x, family, arch, false, dev).to_kind(ctx.original.kind());
        tch::manual_seed(ctx.seed);

        // Step 1: counterfactual tuples, materialised once.
        let forget: Vec<i64> = ctx
            .split
            .forget
            .iter()
            .copied()
            .cycle()
            .take(ctx.split.forget.len() * ctx.split.forget_repeat)
            .collect();
        let n = forget.len().min(ctx.split.sample.len()) as i64;
        let f_idx = idx_tensor(&forget[..n as usize]);
        let s_idx = idx_tensor(&ctx.split.sample[..n as usize]);
        let x_f = prep(&data.train_x.index_select(0, &f_idx));
        let y_f = data.train_y.index_select(0, &f_idx).to_device(dev);
        let x_s = prep(&data.train_x.index_select(0, &s_idx));
        let y_s = data.train_y.index_select(0, &s_idx).to_device(dev);
        let x_cf = &x_s + Tensor::rand_like(&x_s);
        // Where y_s == y_f, redraw uniformly from the K-1 classes other than y_f.
        let r = Tensor::randint(k - 1, [n], (Kind::Int64, dev));
        let other = &r + r.ge_tensor(&y_f).to_kind(Kind::Int64);
        let y_cf = other.where_self(&y_s.eq_tensor(&y_f), &y_s);

        // Step 2: f_n = f_o; two optimizers with their own moments.
        let f_o = ctx.original;
        let f_n = f_o.duplicate().map_err(crate::MlError::from)?;
        let mut opt_kl = adam(&f_n.vs, kl_lr, wd)?;
        let mut opt_ce = adam(&f_n.vs, impair_lr, wd)?;

        // Step 3. The fast loop's teacher side: f_o's log-softmaxed embeddings, once.
        let fused = !literal && !f_o.has_batch_norm();
        let teacher = (!literal).then(|| (log_softmax_emb(f_o, &x_s), log_softmax_emb(f_o, &x_cf)));
        let all = Tensor::arange(n, (Kind::Int64, Device::Cpu));
        for epoch in 1..=epochs {
            let cf_batches = batches(&all, bs, true);
            let r_batches = batches(&all, bs, true);
            let steps = cf_batches.len().min(r_batches.len());
            let bar = StageProgress::new(
                &format!("camu epoch {epoch}/{epochs}"),
                steps as u64,
                "steps",
            );
            for (step, (cb, rb)) in cf_batches.iter().zip(&r_batches).enumerate() {
                let (cb, rb) = (cb.to_device(dev), rb.to_device(dev));
                let xf = x_f.index_select(0, &cb);
                let ycf = y_cf.index_select(0, &cb);
                let xr = x_s.index_select(0, &rb);
                let yr = y_s.index_select(0, &rb);
                // (a) representation step.
                let (t_r, t_cf) = match &teacher {
                    Some((t_s, t_xcf)) => (t_s.index_select(0, &rb), t_xcf.index_select(0, &cb)),
                    None => tch::no_grad(|| {
                        let xcf = x_cf.index_select(0, &cb);
                        (
                            f_o.forward(&xr, false).1.log_softmax(1, None),
                            f_o.forward(&xcf, false).1.log_softmax(1, None),
                        )
                    }),
                };
                let (s_r, s_f) = forward_pair(&f_n, &xr, &xf, fused, |o| o.1);
                let (s_r, s_f) = (s_r.log_softmax(1, None), s_f.log_softmax(1, None));
                let l_kl = kl_sum(&t_r, &s_r) * w_kr + kl_sum(&t_cf, &s_f) * w_kf;
                opt_kl.zero_grad();
                l_kl.backward();
                opt_kl.step();
                // (b) output step, on fresh forward passes.
                let (o_r, o_f) = forward_pair(&f_n, &xr, &xf, fused, |o| o.0);
                let l_ce = o_r.cross_entropy_for_logits(&yr) * w_cr
                    + o_f.cross_entropy_for_logits(&ycf) * w_cf;
                opt_ce.zero_grad();
                l_ce.backward();
                opt_ce.step();
                if step % 20 == 0 {
                    bar.set_message(format!(
                        "kl {:.3} ce {:.4}",
                        l_kl.double_value(&[]),
                        l_ce.double_value(&[])
                    ));
                }
                bar.set(step as u64 + 1);
                crate::ml::adapt_threads();
            }
            bar.finish();
        }
        Ok(Outcome {
            model: f_n,
            details: super::details(&p, json!({"pairs": n})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_sum_matches_definition() {
        let p = Tensor::from_slice(&[0.2f32, 0.8]).view([1, 2]);
        let q = Tensor::from_slice(&[0.5f32, 0.5]).view([1, 2]);
        let got = kl_sum(&p.log(), &q.log()).double_value(&[]);
        let want = 0.2 * (0.2f64 / 0.5).ln() + 0.8 * (0.8f64 / 0.5).ln();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
