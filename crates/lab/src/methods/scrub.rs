//! SCRUB (Kurmanji et al., NeurIPS 2023): a student (copy of f_o, train mode) moves away from the
//! teacher f_o on Df and stays close to it on Dr. Each epoch: while epoch <= msteps, a max pass
//! over Df minimising -KL_T(teacher || student); then a min pass over Dr minimising
//! gamma * CE + alpha * KL_T(teacher || student), KL_T at temperature T, batch-mean, times T^2.
//! One Adam optimizer serves both passes; its lr is multiplied by 0.1 for every decay epoch the
//! current epoch is past.
//!
//! Reference: meghdadk/SCRUB, `small_scale_unlearning.ipynb` (cell settings: `optim = 'adam'`,
//! `sgda_learning_rate` 5e-4, `lr_decay_epochs` [5, 8, 9], `lr_decay_rate` 0.1,
//! `sgda_weight_decay` 0.1 as Adam's coupled L2, `msteps` 3, `sgda_epochs` 10, `kd_T` 2, `gamma`
//! 1, `alpha` 0.5, `retain_bs` 32, `forget_bs` 64), `thirdparty/repdistiller/helper/util.py`
//! (`adjust_learning_rate`: lr * rate ** sum(epoch > decay_epochs), epochs counted from 1) and
//! `distiller_zoo/KD.py` (DistillKL).

use super::{Method, ParamSpec};

pub struct Scrub;

impl Method for Scrub {
    fn name(&self) -> &'static str {
        "scrub"
    }
    fn version(&self) -> u32 {
        // 2: lr decay, weight decay 0.1, batches 32 (Dr) / 64 (Df) as the notebook.
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "meghdadk/SCRUB `small_scale_unlearning.ipynb`; `thirdparty/repdistiller/helper/util.py` (`adjust_learning_rate`), `distiller_zoo/KD.py`",
            defaults: &[
                ("optimizer", "adam", "`args.optim = 'adam'`"),
                ("lr", "0.0005", "`args.sgda_learning_rate`"),
                (
                    "lr_decay_rate",
                    "0.1",
                    "`args.lr_decay_rate`; decay after epochs 5, 8, 9 (`args.lr_decay_epochs`)",
                ),
                (
                    "weight_decay",
                    "0.1",
                    "`args.sgda_weight_decay` (Adam's coupled L2)",
                ),
                ("msteps", "3", "`args.msteps`"),
                ("epochs", "10", "`args.sgda_epochs`"),
                ("temperature", "2", "`args.kd_T`"),
                ("gamma", "1", "`args.gamma`"),
                ("alpha", "0.5", "`args.alpha`"),
                ("batch_size", "32", "`args.retain_bs`"),
                ("forget_batch_size", "64", "`args.forget_bs`"),
                ("remain_fraction", "1", "all of Dr"),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "lr",
                "lr_decay_rate",
                "temperature",
                "gamma",
                "alpha",
                "weight_decay",
                "momentum",
                "remain_fraction",
            ],
            ints: &["epochs", "msteps", "batch_size", "forget_batch_size"],
            strs: &["optimizer"],
        }
    }
}
