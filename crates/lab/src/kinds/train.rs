//! `train`: the original model (on D) or the retrained baseline (`on: remain`, on Dr only, from a
//! fresh initialisation), with the reference recipe.

use crate::protocol::Arch;
use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::Kind;
use serde_json::{Map, Value};

pub struct Train;

const PARAMS: &[&str] = &[
    "on",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "seed",
    "arch",
    "augment",
    "device",
    "split",
];

impl Kind for Train {
    fn name(&self) -> &'static str {
        "train"
    }
    fn version(&self) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, PARAMS)?;
        let p = Params(params);
        p.usize("epochs", 0)?;
        p.usize("batch_size", 0)?;
        p.non_negative(&["lr", "weight_decay"])?;
        p.bool("augment", false)?;
        match p.str("on", "full")? {
            "full" | "remain" => {}
            o => {
                return Err(format!("parameter `on` must be `full` or `remain`, got `{o}`").into());
            }
        }
        let a = p.str("arch", "auto")?;
        if a != "auto" {
            Arch::parse(a)?;
        }
        p.i64("seed", 0)?;
        p.str("device", "auto")?;
        Ok(())
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
