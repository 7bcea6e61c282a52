//! NegGrad+ (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): per step,
//! alpha * CE(f(x_r), y_r) - (1 - alpha) * CE(f(x_f), y_f), the forget loader cycled alongside the
//! retain loader. Defaults: alpha 0.95, 10 epochs, SGD lr 0.01, momentum 0.9, weight decay 5e-4.

use super::common::{Recipe, pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::ml::batches;
use crate::params::Params;
use serde_json::json;

pub struct NegGradPlus;

impl Method for NegGradPlus {
    fn name(&self) -> &'static str {
        "neggrad_plus"
    }
    fn version(&self) -> u32 {
        1
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &["alpha", "lr", "momentum", "weight_decay", "remain_fraction"],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
    fn validate(&self, params: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
        self.spec().check(params)?;
        match Params(params).opt_f64("alpha")? {
            Some(a) if a > 1.0 => Err("parameter `alpha` must be in [0, 1]".into()),
            _ => Ok(()),
        }
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let p = Params(ctx.params);
        let alpha = p.f64("alpha", 0.95)?;
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 32,
        }
        .start(ctx)?;
        let (model, opt, epochs, bs) = (&s.model, &mut s.opt, s.epochs, s.batch);
        let remain = ctx.remain_subset(p.f64("remain_fraction", 1.0)?);
        let forget = ctx.forget_idx();
        for e in 1..=epochs {
            let fb = batches(&forget, bs, true);
            let mut k = 0;
            pass(&format!("neggrad+ epoch {e}/{epochs}"), &remain, bs, |rb| {
                let r = ctx.batch(rb, None);
                let f = ctx.batch(&fb[k % fb.len()], None);
                k += 1;
                let loss = model.forward(&r.x, true).0.cross_entropy_for_logits(&r.y) * alpha
                    - model.forward(&f.x, true).0.cross_entropy_for_logits(&f.y) * (1.0 - alpha);
                opt.backward_step(&loss);
                Ok(loss.double_value(&[]))
            })?;
        }
        Ok(s.outcome(json!({"alpha": alpha})))
    }
}
