//! Bad teaching / incompetent teacher (Chundawat et al., AAAI 2023; "TS" in the CaMU paper): the
//! student (a copy of f_o) distils from the competent teacher f_o on a random part of Dr and from
//! a randomly initialised teacher on Df, minimising KL(teacher_mix || student) at temperature tau.
//!
//! Reference: vikram2000b/bad-teaching-unlearning, `unlearn.py` (`UnlearnerLoss`:
//! `F.kl_div(student_out, overall_teacher_out)`, PyTorch's default reduction, the mean over all
//! batch x class elements) and its notebook: `KL_temperature` 1, `Adam(lr=0.0001)`, 1 epoch,
//! batch 256, `random.sample(retain_train, int(0.3 * len(retain_train)))`, the incompetent
//! teacher a randomly initialised model of the same architecture, the student left in train mode.

use super::{Method, ParamSpec};

pub struct BadTeacher;

impl Method for BadTeacher {
    fn name(&self) -> &'static str {
        "bad_teacher"
    }
    fn version(&self) -> u32 {
        // 2: KL averaged over all elements, as F.kl_div's default (v1: per-sample mean).
        2
    }
    fn reference(&self) -> super::Reference {
        super::Reference {
            source: "vikram2000b/bad-teaching-unlearning at f1aa988: `unlearn.py` (`UnlearnerLoss`) and its notebook",
            defaults: &[
                (
                    "optimizer",
                    "adam",
                    "`torch.optim.Adam(student_model.parameters(), lr = 0.0001)`",
                ),
                ("lr", "0.0001", "ditto"),
                ("weight_decay", "0", "Adam's default"),
                ("epochs", "1", "`epochs = 1`"),
                ("batch_size", "256", "`batch_size = 256`"),
                ("temperature", "1", "`KL_temperature = 1`"),
                (
                    "remain_fraction",
                    "0.3",
                    "`random.sample(retain_train, int(0.3*len(retain_train)))`",
                ),
            ],
            deviations: &[],
        }
    }
    fn spec(&self) -> ParamSpec {
        ParamSpec {
            floats: &[
                "lr",
                "temperature",
                "remain_fraction",
                "weight_decay",
                "momentum",
            ],
            ints: &["epochs", "batch_size"],
            strs: &["optimizer"],
        }
    }
}
