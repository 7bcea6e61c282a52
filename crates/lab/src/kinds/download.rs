//! `download`: obtains a dataset (verified) and stores its decoded tensors as the stage output.

use crate::protocol::DATASETS;
use camu_core::params::{ParamError, Params, parse};
use camu_core::spec::Kind;
use serde::Deserialize;
use serde_json::{Map, Value};

pub struct Download;

/// `download`'s parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    pub dataset: String,
    /// Base URLs or directories tried before the dataset's own sources.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Keep only the first N training (test) samples.
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// The synthetic set: classes, sizes, noise, seed.
    #[serde(default = "classes")]
    pub classes: usize,
    #[serde(default = "n_train")]
    pub n_train: usize,
    #[serde(default = "n_test")]
    pub n_test: usize,
    #[serde(default = "noise")]
    pub noise: f64,
    #[serde(default)]
    pub seed: i64,
}

/// The most classes the synthetic set is generated with.
pub const MAX_SYNTHETIC_CLASSES: usize = 1000;

fn classes() -> usize {
    10
}
fn n_train() -> usize {
    2000
}
fn n_test() -> usize {
    500
}
fn noise() -> f64 {
    0.5
}

impl DownloadParams {
    /// Reads and checks `with`: what validation and the run both use.
    pub fn read(params: &Map<String, Value>) -> Result<DownloadParams, ParamError> {
        let d: DownloadParams = parse(params)?;
        if !DATASETS.contains(&d.dataset.as_str()) {
            return Err(ParamError::UnknownValue {
                what: "dataset",
                value: d.dataset.clone(),
                known: DATASETS.join(", "),
            });
        }
        let sizes = [
            ("limit_train", d.limit_train.unwrap_or(1)),
            ("limit_test", d.limit_test.unwrap_or(1)),
            ("classes", d.classes),
            ("n_train", d.n_train),
            ("n_test", d.n_test),
        ];
        for (key, v) in sizes {
            if v == 0 {
                return Err(ParamError::Range {
                    key: key.into(),
                    rule: "be at least 1",
                });
            }
        }
        Params(params).non_negative(&["noise"])?;
        // The synthetic set holds a 28x28 template per class: beyond this it is memory, not data.
        if d.classes > MAX_SYNTHETIC_CLASSES {
            return Err(ParamError::Invalid(format!(
                "`classes: {}` is more than the synthetic set's {MAX_SYNTHETIC_CLASSES}",
                d.classes
            )));
        }
        Ok(d)
    }
}

impl Kind for Download {
    fn name(&self) -> &'static str {
        "download"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        DownloadParams::read(params).map(|_| ())
    }
    fn provides(&self) -> &'static [&'static str] {
        &["dataset.json"]
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}
