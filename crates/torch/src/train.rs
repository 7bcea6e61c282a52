//! Supervised training: the original model on D and the retrained model on Dr, same recipe.

use crate::data::{Dataset, Family};
use crate::ml::{accuracy, batches, infer};
use crate::models::{Model, prepare};
use camu_core::progress::StageProgress;
use serde::Serialize;
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor, nn};

/// The reference recipe: Adam, lr 1e-3, weight decay 1e-4 (L2, as torch.optim.Adam), batch 32,
/// 20 epochs, cross-entropy, reshuffled every epoch.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: i64,
    pub lr: f64,
    pub weight_decay: f64,
    pub augment: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        use camu_lab::kinds::train::{BATCH_SIZE, EPOCHS, LR, WEIGHT_DECAY};
        TrainConfig {
            epochs: EPOCHS,
            batch_size: BATCH_SIZE as i64,
            lr: LR,
            weight_decay: WEIGHT_DECAY,
            augment: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub train_acc: f64,
    pub seconds: f64,
    pub images_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochStats>,
    pub train_time_s: f64,
    pub images_per_s: f64,
    pub n_train: i64,
}

/// Adam with PyTorch's L2-style weight decay.
pub fn adam(vs: &nn::VarStore, lr: f64, wd: f64) -> Result<nn::Optimizer, crate::MlError> {
    nn::Adam {
        wd,
        ..Default::default()
    }
    .build(vs, lr)
    .map_err(crate::MlError::from)
}

/// Trains `model` in place on the training samples `idx` of `data`.
pub fn train(
    model: &mut Model,
    data: &Dataset,
    idx: &Tensor,
    cfg: &TrainConfig,
) -> Result<TrainReport, crate::MlError> {
    let family: Family = data.meta.family;
    let mut opt = adam(&model.vs, cfg.lr, cfg.weight_decay)?;
    let device = model.device();
    let n = idx.size()[0];
    let mut report = TrainReport {
        epochs: Vec::new(),
        train_time_s: 0.0,
        images_per_s: 0.0,
        n_train: n,
    };
    let start = Instant::now();
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let bs = batches(idx, cfg.batch_size, true);
        let bar = StageProgress::new(
            &format!("epoch {epoch}/{}", cfg.epochs),
            bs.len() as u64,
            "batches",
        );
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0i64);
        for (k, b) in bs.iter().enumerate() {
            let x = prepare(
                &data.train_x.index_select(0, b),
                family,
                model.spec.arch,
                cfg.augment,
                device,
            );
            let y = data.train_y.index_select(0, b).to_device(device);
            let (logits, _) = model.forward(&x, true);
            let loss = logits.cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            let m = y.size()[0];
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(crate::MlError::Diverged(format!(
                    "training diverged at epoch {epoch}: loss {l}"
                )));
            }
            loss_sum += l * m as f64;
            correct += logits
                .argmax(1, false)
                .eq_tensor(&y)
                .sum(Kind::Int64)
                .int64_value(&[]);
            seen += m;
            if k % 20 == 0 {
                bar.set_message(format!(
                    "loss {:.4} acc {:.4}",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64
                ));
            }
            bar.set(k as u64 + 1);
            crate::ml::adapt_threads();
        }
        let secs = t0.elapsed().as_secs_f64();
        let stats = EpochStats {
            epoch,
            loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            seconds: secs,
            images_per_s: seen as f64 / secs.max(1e-9),
        };
        bar.finish_with(&format!(
            "loss {:.4} acc {:.4} {:.0} img/s",
            stats.loss, stats.train_acc, stats.images_per_s
        ));
        report.epochs.push(stats);
    }
    report.train_time_s = start.elapsed().as_secs_f64();
    report.images_per_s = (n as f64 * cfg.epochs as f64) / report.train_time_s.max(1e-9);
    Ok(report)
}

/// Test accuracy, for reports and tests.
pub fn test_accuracy(model: &Model, data: &Dataset) -> f64 {
    let (logits, _) = infer(model, &data.test_x, data.meta.family, 512);
    accuracy(&logits, &data.test_y)
}
