//! SCRUB (Kurmanji et al., NeurIPS 2023): a student (copy of f_o) moves away from the teacher f_o
//! on Df and stays close to it on Dr. Each epoch: while epoch <= msteps, a max pass over Df
//! minimising -KL_T(teacher || student); then a min pass over Dr minimising
//! gamma * CE + alpha * KL_T(teacher || student), KL_T at temperature T times T^2.
//! Small-scale defaults: Adam lr 5e-4, T 2, msteps 3, 10 epochs, gamma 1, alpha 0.5.

use super::common::{Recipe, kl_t, pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;

pub struct Scrub;

impl Method for Scrub {
    fn name(&self) -> &'static str {
        "scrub"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "lr",
                "temperature",
                "gamma",
                "alpha",
                "weight_decay",
                "momentum",
                "remain_fraction",
            ],
            ints: &["epochs", "msteps", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let (t, gamma, alpha) = (
            p.f64("temperature", 2.0)?.max(1e-6),
            p.f64("gamma", 1.0)?,
            p.f64("alpha", 0.5)?,
        );
        let msteps = p.usize("msteps", 3)?;
        let mut s = Recipe {
            optimizer: "adam",
            lr: 5e-4,
            weight_decay: 0.0,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let teacher = ctx.original;
        let (student, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.f64("remain_fraction", 1.0)?),
        );
        for e in 1..=epochs {
            if e <= msteps {
                pass(
                    &format!("scrub epoch {e}/{epochs} (max, Df)"),
                    &f,
                    bs,
                    |b| {
                        let bt = ctx.batch(b, None);
                        let tl = tch::no_grad(|| teacher.forward(&bt.x, false).0);
                        let loss = -kl_t(&tl, &student.forward(&bt.x, true).0, t);
                        opt.backward_step(&loss);
                        Ok(loss.double_value(&[]))
                    },
                )?;
            }
            pass(
                &format!("scrub epoch {e}/{epochs} (min, Dr)"),
                &r,
                bs,
                |b| {
                    let bt = ctx.batch(b, None);
                    let tl = tch::no_grad(|| teacher.forward(&bt.x, false).0);
                    let sl = student.forward(&bt.x, true).0;
                    let loss =
                        sl.cross_entropy_for_logits(&bt.y) * gamma + kl_t(&tl, &sl, t) * alpha;
                    opt.backward_step(&loss);
                    Ok(loss.double_value(&[]))
                },
            )?;
        }
        Ok(s.outcome(json!({"temperature": t, "gamma": gamma, "alpha": alpha, "msteps": msteps})))
    }
}
