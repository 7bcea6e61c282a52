//! Amnesiac unlearning, relabel variant (Graves et al. 2021, as public baselines implement it):
//! relabel each Df sample once with a random *wrong* class, mix it with all of Dr, train in train
//! mode.
//!
//! Reference: if-loops/selective-synaptic-dampening, `src/forget_full_class_strategies.py` and
//! `src/forget_random_strategies.py` (`amnesiac`): `DataLoader(unlearning_trainset, 128,
//! shuffle=True)` and `fit_one_unlearning_cycle(3, ..., lr=0.0001)`, which is Adam
//! (`src/unlearn.py`), 3 epochs, batch 128, no schedule.

use super::common::{Recipe, ce_pass};
use super::{Context, Method, Outcome, ParamSpec};
use crate::params::Params;
use serde_json::json;
use tch::Tensor;

pub struct Amnesiac;

impl Method for Amnesiac {
    fn name(&self) -> &'static str {
        "amnesiac"
    }
    fn version(&self) -> u32 {
        // 2: batch 128 as the SSD repository (v1: 32).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "if-loops/selective-synaptic-dampening `src/forget_full_class_strategies.py`, `src/forget_random_strategies.py` (`amnesiac`), `src/unlearn.py`",
            defaults: &[
                (
                    "optimizer",
                    "adam",
                    "`fit_one_unlearning_cycle` builds `torch.optim.Adam`",
                ),
                ("lr", "0.0001", "`lr=0.0001`"),
                ("weight_decay", "0", "Adam's default"),
                ("epochs", "3", "`fit_one_unlearning_cycle(3, ...)`"),
                (
                    "batch_size",
                    "128",
                    "`DataLoader(unlearning_trainset, 128, ...)`",
                ),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        super::TRAINING_SPEC
    }
    fn unlearn(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        let mut s = Recipe {
            optimizer: "adam",
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 0.0,
            epochs: 3,
            batch_size: 128,
        }
        .start(ctx)?;
        let labels = ctx.wrong_labels_for_forget();
        let remain = ctx.remain_subset(Params(ctx.params).f64("remain_fraction", 1.0)?);
        let mixed = Tensor::cat(&[ctx.forget_idx(), remain], 0);
        for e in 1..=s.epochs {
            ce_pass(
                ctx,
                &s.model,
                &mut s.opt,
                &mixed,
                Some(&labels),
                s.batch,
                &format!("amnesiac epoch {e}/{}", s.epochs),
            )?;
        }
        Ok(s.outcome(json!({})))
    }
}
