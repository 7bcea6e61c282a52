//! UNSIR (Tarun et al., IEEE TNNLS 2023, "Fast yet effective machine unlearning"), for class
//! removal: for each forgotten class learn an error-maximising noise batch (minimise
//! -CE(f(N), class) + noise_l2 * mean_i ||N_i||^2 with f's weights fixed); impair: one epoch on
//! the noise, labelled with its own class, mixed with a per-class subset of Dr; repair: one
//! epoch on that subset alone. All from one source, the authors' notebook.
//!
//! Reference: vikram2000b/Fast-Machine-Unlearning at 252bc92, `Machine Unlearning.ipynb`: noise
//! batch 256 per class, 5 x 8 = 40 Adam steps at lr 0.1, L2 weight 0.1; the first 1,000 retained
//! samples of each class in dataset order (`classwise_train[i][:num_samples_per_class]`);
//! impair `Adam(lr=0.02)`, repair `Adam(lr=0.01)`, one epoch each at batch 256, train mode.
//! The noise has the data's resolution (`Noise(batch_size, 3, 32, 32)` for CIFAR); where the
//! model takes 224x224 inputs (the ImageNet-stem ResNet-18), it is resized to that, as images are.
//! The notebook's noisy-dataset cell adds `batch[0].size(0)` samples of the noise batch (its
//! channel count, not the batch size) for each of its `num_batches` = 20 rounds: on CIFAR 60
//! noise samples per class, 3 of them distinct; at the MNIST family's resolution 20 copies of one
//! sample. The SSD repository's UNSIR has the same loop. The published numbers come from that
//! loop, so it is kept: `noise_per_round` is the data's channel count, `noise_repeat` 20 (set
//! `noise_per_round: 256` for every learned sample). Run side by side with the notebook's own
//! cells on Fashion-MNIST class 0 (benches/vs-reference), a fixed 3 per round left RA at 57.5
//! against the notebook's 72.9; with 1, 77.4. Deviation: that cell also labels every noise
//! batch with class 0 (`class_num = 0`), wrong as soon as two classes are forgotten; here each
//! keeps its own class. The noise is learned against f in eval mode (the notebook leaves it in
//! train mode, which only matters for batch norm).

use super::{Method, ParamSpec};

pub struct Unsir;

impl Method for Unsir {
    fn name(&self) -> &'static str {
        "unsir"
    }
    fn version(&self) -> u32 {
        // 3: the first 1,000 retained samples per class, as the notebook (v2: a random 1,000).
        // 4: noise learned at the data's resolution (32x32 for CIFAR), resized for a 224 input.
        // 5: `noise_per_round` defaults to the data's channel count, as the notebook's loop.
        5
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "vikram2000b/Fast-Machine-Unlearning at 252bc92: `Machine Unlearning.ipynb`",
            defaults: &[
                (
                    "noise_batch",
                    "256",
                    "`Noise(batch_size, 3, 32, 32)`, `batch_size = 256`",
                ),
                ("noise_steps", "40", "`num_epochs = 5` x `num_steps = 8`"),
                (
                    "noise_lr",
                    "0.1",
                    "`torch.optim.Adam(noise.parameters(), lr = 0.1)`",
                ),
                (
                    "noise_l2",
                    "0.1",
                    "`0.1*torch.mean(torch.sum(torch.square(inputs), [1, 2, 3]))`",
                ),
                ("noise_repeat", "20", "`num_batches = 20`"),
                (
                    "noise_per_round",
                    "the data's channel count (CIFAR 3, MNIST family 1)",
                    "`for i in range(batch[0].size(0))`: the noise batch's channels",
                ),
                (
                    "remain_per_class",
                    "1000",
                    "`num_samples_per_class = 1000`: the first of each class",
                ),
                ("impair_lr", "0.02", "`Adam(lr = 0.02)`"),
                ("repair_lr", "0.01", "`Adam(lr = 0.01)`"),
                ("batch_size", "256", "`DataLoader(..., batch_size=256)`"),
            ],
            deviations: &[
                "The notebook labels every noise batch with class 0 (`class_num = 0`); here each keeps its forgotten class.",
                "The noise is learned against f in eval mode (the notebook: train mode, which only matters with batch norm).",
            ],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "noise_lr",
                "noise_l2",
                "impair_lr",
                "repair_lr",
                "momentum",
                "weight_decay",
            ],
            ints: &[
                "noise_steps",
                "noise_batch",
                "noise_repeat",
                "noise_per_round",
                "remain_per_class",
                "batch_size",
            ],
            strs: &["optimizer"],
        }
    }
}
