//! NegGrad+ (Kurmanji et al., NeurIPS 2023, "Towards Unbounded Machine Unlearning"): per step,
//! alpha * (CE(f(x_r), y_r) + anchor / 2 * ||w - w_0||^2) - (1 - alpha) * CE(f(x_f), y_f), with
//! w_0 the original weights, over one pass of the retain loader per epoch with the forget loader
//! cycled alongside it, model in eval mode.
//!
//! Reference: meghdadk/SCRUB, `small_scale_unlearning.ipynb`: `run_neggrad_epoch` and
//! `negative_grad` (`ng_alpha` 0.95, `ng_epochs` 10, `ng_lr` 0.01), the optimizer
//! `torch.optim.SGD(lr, weight_decay=0)` (no momentum, no weight decay), `l2_penalty` with the
//! notebook's `--weight-decay 0.1` as `anchor`, retain batch 128 (`--batch-size`) and forget
//! batch 64. `itertools.cycle` replays the forget loader's first pass in the same order for the
//! rest of an epoch; the forget set is reshuffled each epoch. Both are done here.
//!
//! Deviation: every step is guarded; at the first step whose loss, weights or probe outputs would
//! not be finite, the method stops on the last finite weights and records `diverged_at_epoch`.

use super::{Method, ParamSpec};
use camu_core::params::{ParamError, Params};

pub struct NegGradPlus;

impl Method for NegGradPlus {
    fn name(&self) -> &'static str {
        "neggrad_plus"
    }
    fn version(&self) -> u32 {
        // 3: the SCRUB notebook's plain SGD, L2 anchor to w_0, batches 128/64, eval mode.
        3
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "meghdadk/SCRUB `small_scale_unlearning.ipynb`: `run_neggrad_epoch`, `negative_grad`, `l2_penalty`",
            defaults: &[
                ("alpha", "0.95", "`args.ng_alpha`"),
                (
                    "anchor",
                    "0.1",
                    "`l2_penalty(model, model_init, args.weight_decay)` with `--weight-decay 0.1`",
                ),
                (
                    "optimizer",
                    "sgd",
                    "`torch.optim.SGD(lr=lr, weight_decay=0.0)`",
                ),
                ("lr", "0.01", "`args.ng_lr`"),
                ("momentum", "0", "SGD without momentum"),
                ("weight_decay", "0", "`weight_decay=0.0` in the optimizer"),
                ("epochs", "10", "`args.ng_epochs`"),
                (
                    "batch_size",
                    "128",
                    "retain loader rebuilt with `args.batch_size` 128",
                ),
                ("forget_batch_size", "64", "forget loader, batch 64"),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &["Every step is guarded as for neggrad."],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "alpha",
                "anchor",
                "lr",
                "momentum",
                "weight_decay",
                "remain_fraction",
            ],
            ints: &["epochs", "batch_size", "forget_batch_size"],
            strs: &["optimizer"],
        }
    }
    fn validate(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ParamError> {
        self.spec().check(params)?;
        let p = Params(params);
        if p.opt_i64("forget_batch_size")? == Some(0) {
            return Err("parameter `forget_batch_size` must be positive".into());
        }
        match p.opt_f64("alpha")? {
            Some(a) if a > 1.0 => Err("parameter `alpha` must be in [0, 1]".into()),
            _ => Ok(()),
        }
    }
}
