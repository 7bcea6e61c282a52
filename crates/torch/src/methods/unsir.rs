//! Unsir: the implementation. What it computes, its defaults and their sources: `camu_lab::methods::unsir`.

use super::common::{optimizer, pass};
use super::{Compute, Context, Outcome, details};
use crate::ml::idx_tensor;
use crate::models::Arch;
use serde_json::json;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor, nn};

use camu_lab::methods::{Unsir, UnsirParams};

/// The reference's retained samples: the first `per_class` of each remaining class in dataset
/// order (`classwise_train[i][:num_samples_per_class]`).
pub fn retained_subset(ctx: &Context<'_>, per_class: usize) -> Result<Vec<i64>, crate::MlError> {
    let labels = Vec::<i64>::try_from(&ctx.data.train_y).map_err(crate::MlError::from)?;
    let mut taken = std::collections::HashMap::<i64, usize>::new();
    let mut remain = ctx.split.remain.clone();
    remain.sort_unstable();
    Ok(remain
        .into_iter()
        .filter(|&i| {
            let n = taken.entry(labels[i as usize]).or_default();
            *n += 1;
            *n <= per_class
        })
        .collect())
}

impl Compute for Unsir {
    fn unlearn(&self, ctx: &Context<'_>, mut p: UnsirParams) -> Result<Outcome, crate::MlError> {
        let classes = ctx.split.scenario.forgotten_classes();
        if classes.is_empty() {
            return Err(crate::MlError::NotApplicable(
                "unsir applies to class removal; this split is random".into(),
            ));
        }
        let (noise_lr, l2) = (p.noise_lr, p.noise_l2);
        let (steps, nb, repeat) = (p.noise_steps, p.noise_batch.max(1) as i64, p.noise_repeat);
        // The notebook's `for i in range(batch[0].size(0))` counts the noise's channels.
        let channels = ctx.data.meta.channels as usize;
        let per_round = (p.noise_per_round.unwrap_or(channels) as i64).clamp(1, nb);
        p.noise_per_round = Some(per_round as usize);
        let (impair_lr, repair_lr) = (p.impair_lr, p.repair_lr);
        let (per_class, bs) = (p.remain_per_class, p.batch_size as i64);
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(crate::MlError::from)?;
        // The noise lives at the data's own resolution (the notebook's `Noise(batch_size, 3, 32,
        // 32)`), in the model's normalised input space; the ImageNet-stem ResNet sees it resized
        // to its 224x224 input, as it sees every image.
        let m = &ctx.data.meta;
        let shape = [nb, m.channels, m.height, m.width];
        let to_input = |n: &Tensor| match ctx.original.spec.arch {
            Arch::Resnet18 => n.upsample_bilinear2d([224, 224], false, None, None),
            _ => n.shallow_clone(),
        };
        // 1. One error-maximising noise batch per forgotten class, the model frozen.
        let (mut noise_x, mut noise_y) = (Vec::new(), Vec::new());
        for &c in &classes {
            let vs = nn::VarStore::new(ctx.device);
            let noise = vs.root().var(
                "noise",
                &shape,
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            );
            let mut opt = nn::Adam::default()
                .build(&vs, noise_lr)
                .map_err(crate::MlError::from)?;
            let target = Tensor::full([nb], c, (Kind::Int64, ctx.device));
            for _ in 0..steps {
                let out = ctx.original.forward(&to_input(&noise), false).0;
                let loss = -out.cross_entropy_for_logits(&target)
                    + noise
                        .square()
                        .sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float)
                        .mean(Kind::Float)
                        * l2;
                opt.backward_step(&loss);
            }
            let n = to_input(&noise.detach());
            for _ in 0..repeat {
                noise_x.push(n.narrow(0, 0, per_round));
                noise_y.push(target.narrow(0, 0, per_round));
            }
        }
        // 2. A subset of Dr: the first `per_class` samples of each remaining class.
        let subset = retained_subset(ctx, per_class)?;
        let sub = ctx.batch(&idx_tensor(&subset), None);
        let impair_x = Tensor::cat(&[Tensor::cat(&noise_x, 0), sub.x.shallow_clone()], 0);
        let impair_y = Tensor::cat(&[Tensor::cat(&noise_y, 0), sub.y.shallow_clone()], 0);
        let run = |x: &Tensor, y: &Tensor, lr: f64, label: &str| -> Result<f64, crate::MlError> {
            let mut opt = optimizer(p.optimizer, &model.vs, lr, p.momentum, p.weight_decay)?;
            let all = Tensor::arange(x.size()[0], (Kind::Int64, Device::Cpu));
            pass(label, &all, bs, |b| {
                let b = b.to_device(ctx.device);
                let loss = model
                    .forward(&x.index_select(0, &b), true)
                    .0
                    .cross_entropy_for_logits(&y.index_select(0, &b));
                opt.backward_step(&loss);
                Ok(loss.double_value(&[]))
            })
        };
        // 3. Impair on noise + subset, then repair on the subset.
        run(&impair_x, &impair_y, impair_lr, "unsir impair")?;
        run(&sub.x, &sub.y, repair_lr, "unsir repair")?;
        Ok(Outcome {
            model,
            details: details(
                &p,
                json!({"noise_shape": shape, "subset": subset.len()}),
            ),
        })
    }
}
