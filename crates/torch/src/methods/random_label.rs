//! RandomLabel: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::random_label`.

use super::common::{Relabeler, ce_pass, pass, recipe};
use super::{Compute, Context, Outcome};
use serde_json::json;

use camu_lab::methods::{RandomLabel, RandomLabelParams, RelabelPreset};
use tch::Tensor;

impl Compute for RandomLabel {
    fn unlearn(&self, ctx: &Context<'_>, p: RandomLabelParams) -> Result<Outcome, crate::MlError> {
        let mut s = recipe!(p).start(ctx)?;
        let (f, r) = (
            ctx.forget_idx(),
            ctx.remain_subset(p.remain_fraction),
        );
        let n = s.epochs;
        let augment = ctx.augment(p.augment);
        let preset = RelabelPreset::resolve(p.preset, &ctx.data.meta.name);
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
        Ok(s.outcome(&p, json!({"relabel_change_rate": relabel.change_rate(), "augment": augment, "preset": preset.name()})))
    }
}
