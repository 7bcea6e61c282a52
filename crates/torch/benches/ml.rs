//! ML throughput: training images/s of the reference CNN (batch 32, 2 threads) and CaMU's unlearn
//! time on Fashion-MNIST random 10% with the reference hyperparameters. Each is measured once
//! (they take seconds to minutes). Run: `cargo bench -p camu-torch --bench ml`; figures in BENCHMARKS.md.

use camu_torch::data::split::{self, Scenario};
use camu_torch::methods::{self, Context};
use camu_torch::models::{Arch, Model, ModelSpec};
use camu_torch::train::{TrainConfig, train};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Training images/s of a ResNet-18 on random CIFAR-sized inputs (the data does not change the
/// cost): `steps` Adam steps at batch 32 after one warm-up step.
fn resnet_throughput(arch: Arch, side: i64, steps: usize) -> f64 {
    tch::manual_seed(0);
    let m = Model::new(
        ModelSpec {
            arch,
            classes: 10,
            channels: 3,
        },
        Device::Cpu,
    );
    let mut opt = camu_torch::train::adam(&m.vs, 1e-3, 1e-4).expect("adam");
    let x = Tensor::rand([32, 3, side, side], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
    let mut step = || opt.backward_step(&m.forward(&x, true).0.cross_entropy_for_logits(&y));
    step();
    let t0 = Instant::now();
    for _ in 0..steps {
        step();
    }
    (32 * steps) as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes flags such as --bench; nothing to parse.
    tch::set_num_threads(2);
    tch::set_num_interop_threads(1);
    println!(
        "train_resnet18_imagenet_stem_224_batch32_2threads: {:.1} images/s",
        resnet_throughput(Arch::Resnet18, 224, 3)
    );
    println!(
        "train_resnet18_cifar_stem_32_batch32_2threads: {:.1} images/s",
        resnet_throughput(Arch::Resnet18Cifar, 32, 10)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = match camu_torch::data::obtain("fashion_mnist", dir.path(), &[]) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Fashion-MNIST unavailable ({e}); run scripts/setup.sh first");
            return;
        }
    };
    let n = ds.meta.n_train;
    tch::manual_seed(0);
    let mut model = Model::new(
        ModelSpec {
            arch: Arch::Cnn,
            classes: 10,
            channels: 1,
        },
        Device::Cpu,
    );
    for batch in [32i64, 64] {
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: batch,
            ..TrainConfig::default()
        };
        let r = train(
            &mut model,
            &ds,
            &Tensor::arange(n, (Kind::Int64, Device::Cpu)),
            &cfg,
        )
        .expect("trains");
        println!(
            "train_cnn_batch{batch}_2threads: {:.0} images/s ({} images, {:.1} s)",
            r.images_per_s, n, r.train_time_s
        );
    }
    let labels = Vec::<i64>::try_from(&ds.train_y).expect("labels");
    let sp = split::make(&labels, Scenario::Random { fraction: 0.1 }, 0, 1).expect("split");
    let params = serde_json::Map::new();
    let ctx = Context {
        original: &model,
        data: &ds,
        split: &sp,
        device: Device::Cpu,
        seed: 0,
        params: &params,
        original_record: &Default::default(),
    };
    let t0 = Instant::now();
    methods::lookup("camu")
        .expect("camu")
        .run(&ctx)
        .expect("unlearns");
    println!(
        "camu_unlearn_fashion_random10_2threads: {:.1} s (|Df| = {}, 10 epochs, reference hyperparameters)",
        t0.elapsed().as_secs_f64(),
        sp.forget.len()
    );
}
