//! BadTeacher: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::bad_teacher`.

use super::common::{pass, recipe};
use super::{Compute, Context, Outcome};
use crate::models::Model;
use serde_json::json;
use tch::{Kind, Tensor};

use camu_lab::methods::{BadTeacher, BadTeacherParams};

impl Compute for BadTeacher {
    fn unlearn(&self, ctx: &Context<'_>, p: BadTeacherParams) -> Result<Outcome, crate::MlError> {
        let (tau, frac) = (p.temperature.max(1e-6), p.remain_fraction);
        let mut s = recipe!(p).start(ctx)?;
        let bad = Model::new(ctx.original.spec.clone(), ctx.device);
        let (student, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        // tag 1 = forget sample (bad teacher), 0 = retained sample (good teacher).
        let is_forget = Tensor::zeros([ctx.data.meta.n_train], (Kind::Bool, tch::Device::Cpu))
            .index_fill(0, &ctx.forget_idx(), 1);
        let mixed = Tensor::cat(&[ctx.forget_idx(), ctx.remain_subset(frac)], 0);
        for e in 1..=epochs {
            pass(
                &format!("bad_teacher epoch {e}/{epochs}"),
                &mixed,
                bs,
                |b| {
                    let bt = ctx.batch(b, None);
                    let tag = is_forget
                        .index_select(0, b)
                        .to_device(ctx.device)
                        .unsqueeze(1);
                    let teacher = tch::no_grad(|| {
                        let good = ctx.original.forward(&bt.x, false).0;
                        let badl = bad.forward(&bt.x, false).0;
                        badl.where_self(&tag, &good)
                    });
                    let loss = unlearner_loss(&teacher, &student.forward(&bt.x, true).0, tau);
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
        }
        Ok(s.outcome(&p, json!({"temperature": tau})))
    }
}

/// The reference's `UnlearnerLoss`: KL(softmax(t/tau) || softmax(s/tau)) elementwise, averaged
/// over all batch x class elements (F.kl_div's default reduction), with no tau^2 factor.
fn unlearner_loss(teacher_logits: &Tensor, student_logits: &Tensor, tau: f64) -> Tensor {
    let t = (teacher_logits / tau).softmax(1, Kind::Float);
    let ls = (student_logits / tau).log_softmax(1, Kind::Float);
    (&t * (t.clamp_min(1e-12).log() - ls)).mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_is_averaged_over_all_elements() {
        // Batch 2, 4 classes: the loss is the per-sample KL summed, divided by 2 x 4.
        let t = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).view([2, 4]);
        let s = Tensor::zeros([2, 4], (Kind::Float, tch::Device::Cpu));
        let p = t.softmax(1, Kind::Float);
        let per_sample = (&p * (p.log() + 4f64.ln())).sum_dim_intlist(1, false, Kind::Float);
        let want = per_sample.sum(Kind::Float).double_value(&[]) / 8.0;
        let got = unlearner_loss(&t, &s, 1.0).double_value(&[]);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // A per-sample mean (batchmean) would be 4 times larger.
        assert!(got < per_sample.mean(Kind::Float).double_value(&[]) / 3.0);
    }
}
