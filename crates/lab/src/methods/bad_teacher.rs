//! Bad teaching / incompetent teacher (Chundawat et al., AAAI 2023; "TS" in the CaMU paper): the
//! student (a copy of f_o) distils from the competent teacher f_o on a random part of Dr and from
//! a randomly initialised teacher on Df, minimising KL(teacher_mix || student) at temperature tau.
//!
//! Reference: vikram2000b/bad-teaching-unlearning, `unlearn.py` (`UnlearnerLoss`:
//! `F.kl_div(student_out, overall_teacher_out)`, PyTorch's default reduction, the mean over all
//! batch x class elements) and its notebook: `KL_temperature` 1, `Adam(lr=0.0001)`, 1 epoch,
//! batch 256, `random.sample(retain_train, int(0.3 * len(retain_train)))`, the incompetent
//! teacher a randomly initialised model of the same architecture, the student left in train mode.

use super::{Declared, MethodParams, Optimizer, Reference};
use serde::{Deserialize, Serialize};

pub struct BadTeacher;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadTeacherParams {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub temperature: f64,
    pub remain_fraction: f64,
}

impl Default for BadTeacherParams {
    fn default() -> Self {
        BadTeacherParams {
            optimizer: Optimizer::Adam,
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 0.0,
            epochs: 1,
            batch_size: 256,
            temperature: 1.0,
            remain_fraction: 0.3,
        }
    }
}

impl MethodParams for BadTeacherParams {}

impl Declared for BadTeacher {
    const NAME: &'static str = "bad_teacher";
    // 2: KL averaged over all elements, as F.kl_div's default (v1: per-sample mean).
    const VERSION: u32 = 2;
    type Params = BadTeacherParams;
    fn reference() -> Reference {
        Reference {
            source: "vikram2000b/bad-teaching-unlearning at f1aa988: `unlearn.py` (`UnlearnerLoss`) and its notebook",
            from: &[
                ("optimizer", "`torch.optim.Adam(student_model.parameters(), lr = 0.0001)`"),
                ("lr", "ditto"),
                ("momentum", "unused by Adam; SGD's momentum when `optimizer: sgd`"),
                ("weight_decay", "Adam's default"),
                ("epochs", "`epochs = 1`"),
                ("batch_size", "`batch_size = 256`"),
                ("temperature", "`KL_temperature = 1`"),
                ("remain_fraction", "`random.sample(retain_train, int(0.3*len(retain_train)))`"),
            ],
            contextual: vec![],
            deviations: &[],
        }
    }
}
