//! RandomLabel: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::random_label`.

use super::common::{Recipe, Relabeler, ce_pass, pass};
use super::{Context, Outcome, Unlearn};
use camu_core::params::Params;
use serde_json::json;

use camu_lab::methods::{RandomLabel, RelabelPreset, relabel_preset};
use tch::Tensor;

impl Unlearn for RandomLabel {
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, crate::MlError> {
        let mut s = Recipe {
            optimizer: "sgd",
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            epochs: 10,
            batch_size: 256,
        }
        .start(ctx)?;
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?),
        );
        let n = s.epochs;
        let augment = ctx.augment()?;
        let preset = relabel_preset(ctx.params, &ctx.data.meta.name)?;
        let mut relabel = Relabeler::new(ctx);
        for e in 1..=n {
            match preset {
                RelabelPreset::Cifar10 => {
                    pass(
                        &format!("random_label epoch {e}/{n} (Df)"),
                        &f,
                        s.batch,
                        |b| {
                            let bt = ctx.train_batch(b, None, augment);
                            let y = relabel.draw(b, ctx.device);
                            let loss = s.model.forward(&bt.x, true).0.cross_entropy_for_logits(&y);
                            s.opt.backward_step(&loss);
                            Ok(loss.double_value(&[]))
                        },
                    )?;
                    ce_pass(
                        ctx,
                        &s.model,
                        &mut s.opt,
                        &r,
                        None,
                        s.batch,
                        augment,
                        &format!("random_label epoch {e}/{n} (Dr)"),
                    )?;
                }
                RelabelPreset::Cifar100 => {
                    let labels = relabel.relabelled(ctx, &f);
                    ce_pass(
                        ctx,
                        &s.model,
                        &mut s.opt,
                        &Tensor::cat(&[&f, &r], 0),
                        Some(&labels),
                        s.batch,
                        augment,
                        &format!("random_label epoch {e}/{n} (Df+Dr)"),
                    )?;
                }
            }
        }
        Ok(s.outcome(json!({"relabel_change_rate": relabel.change_rate(), "augment": augment, "preset": preset.name()})))
    }
}
