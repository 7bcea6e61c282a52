//! Relearn time: how fast forgotten information comes back. The unlearned model is fine-tuned on
//! small batches from a fixed random subset of D (SGD, lr 0.1 by default) and, after each epoch,
//! its loss on Df is compared with the original model's; the count of epochs until it is no
//! higher is `relearn_epochs` (capped). Fewer epochs: the information returns faster.

use crate::data::Dataset;
use crate::data::split::Split;
use crate::ml::{batches, idx_tensor};
use crate::models::{Model, prepare};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

pub struct RelearnOptions {
    pub samples: i64,
    pub lr: f64,
    pub batch: i64,
    pub max_epochs: usize,
    pub seed: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Relearn {
    /// Epochs until the Df loss is back at the original model's (None: not within the cap).
    pub epochs: Option<usize>,
    pub target_loss: f64,
    /// Df loss before relearning and after each epoch.
    pub curve: Vec<f64>,
}

fn df_loss(model: &Model, data: &Dataset, f: &Tensor) -> f64 {
    let _g = tch::no_grad_guard();
    let (mut total, mut n) = (0.0, 0i64);
    for b in batches(f, 512, false) {
        let x = prepare(
            &data.train_x.index_select(0, &b),
            data.meta.family,
            model.spec.arch,
            false,
            model.device(),
        );
        let y = data.train_y.index_select(0, &b).to_device(model.device());
        let l = model
            .forward(&x, false)
            .0
            .cross_entropy_for_logits(&y)
            .double_value(&[]);
        total += l * b.size()[0] as f64;
        n += b.size()[0];
    }
    total / n.max(1) as f64
}

/// Relearns a copy of `unlearned`; `original` gives the target Df loss. Neither is modified.
pub fn relearn(
    unlearned: &Model,
    original: &Model,
    data: &Dataset,
    split: &Split,
    o: &RelearnOptions,
) -> Result<Relearn, crate::MlError> {
    let f = idx_tensor(&split.forget);
    let target = df_loss(original, data, &f);
    let model = unlearned.duplicate().map_err(crate::MlError::from)?;
    tch::manual_seed(o.seed);
    let n = data.meta.n_train;
    let subset = Tensor::randperm(n, (Kind::Int64, Device::Cpu)).narrow(0, 0, o.samples.min(n));
    let mut opt = nn::Sgd::default()
        .build(&model.vs, o.lr)
        .map_err(crate::MlError::from)?;
    let mut curve = vec![df_loss(&model, data, &f)];
    if curve[0] <= target {
        return Ok(Relearn {
            epochs: Some(0),
            target_loss: target,
            curve,
        });
    }
    for epoch in 1..=o.max_epochs {
        for b in batches(&subset, o.batch, true) {
            let x = prepare(
                &data.train_x.index_select(0, &b),
                data.meta.family,
                model.spec.arch,
                false,
                model.device(),
            );
            let y = data.train_y.index_select(0, &b).to_device(model.device());
            let loss = model.forward(&x, true).0.cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
        }
        let l = df_loss(&model, data, &f);
        curve.push(l);
        if !l.is_finite() {
            return Err(crate::MlError::Diverged(format!(
                "relearning diverged at epoch {epoch} (lr {})",
                o.lr
            )));
        }
        if l <= target {
            return Ok(Relearn {
                epochs: Some(epoch),
                target_loss: target,
                curve,
            });
        }
    }
    Ok(Relearn {
        epochs: None,
        target_loss: target,
        curve,
    })
}
