//! `train`: the original model (on D) or the retrained baseline (`on: remain`, on Dr only, from a
//! fresh initialisation), with the reference recipe.

use crate::data::Family;
use crate::ml;
use crate::models::{Model, ModelSpec};
use crate::train::{TrainConfig, test_accuracy, train};
use camu_core::stage::io::write_metrics;
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::train::{On, TrainParams};
use serde_json::{Map, json};
use tch::{Kind as TKind, Tensor};

pub struct TrainRun;

fn config(p: &TrainParams, family: Family) -> TrainConfig {
    TrainConfig {
        epochs: p.epochs,
        batch_size: p.batch_size as i64,
        lr: p.lr,
        weight_decay: p.weight_decay,
        // The reference augments CIFAR training only.
        augment: p.augment.unwrap_or(family == Family::Cifar),
    }
}

impl Runner for TrainRun {
    fn kind(&self) -> &'static str {
        "train"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let rt = super::Runtime::start(job)?;
        let p = TrainParams::read(&job.params)?;
        let device = rt.device;
        let data = rt.dataset()?;
        let cfg = config(&p, data.meta.family);
        let arch = ml::arch(&p.arch, data.meta.family)?;
        let on = p.on.name();
        let idx = if p.on == On::Remain {
            ml::idx_tensor(&rt.split()?.remain)
        } else {
            Tensor::arange(data.meta.n_train, (TKind::Int64, tch::Device::Cpu))
        };
        tch::manual_seed(p.seed);
        let mut model = Model::new(
            ModelSpec {
                arch,
                classes: data.meta.classes,
                channels: data.meta.channels,
            },
            device,
        );
        tracing::info!(on, n = idx.size()[0], epochs = cfg.epochs, device = %ml::device_name(device), "training");
        let report = train(&mut model, &data, &idx, &cfg)?;
        model.save(&job.out_dir).map_err(crate::MlError::from)?;
        let mut m = Map::new();
        m.insert("on".into(), json!(on));
        m.insert("arch".into(), json!(arch));
        m.insert("device".into(), json!(ml::device_name(device)));
        m.insert("threads".into(), json!(job.threads));
        m.insert("config".into(), json!(cfg));
        m.insert("train_time_s".into(), json!(report.train_time_s));
        m.insert("images_per_s".into(), json!(report.images_per_s));
        m.insert("epochs".into(), json!(report.epochs));
        m.insert("acc_test".into(), json!(test_accuracy(&model, &data)));
        write_metrics(job, &m)
    }
}
