//! The pipeline file as written: serde types with spans, before matrix expansion.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Free text shown by `status`.
    #[serde(default)]
    pub description: Option<String>,
    /// Applied to every stage unless the stage overrides it.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The interpreter of stages that run Python (a command on PATH, or a path relative to the
    /// pipeline file); a stage's own `python:` overrides it.
    #[serde(default)]
    pub python: Option<Spanned<String>>,
    pub stages: IndexMap<String, Spanned<RawStage>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Parameters merged (shallowly) under every stage's `with`.
    #[serde(default)]
    pub with: Option<Spanned<IndexMap<String, Value>>>,
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// CPU threads and GPUs one stage occupies while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "one")]
    pub cpus: usize,
    #[serde(default)]
    pub gpus: Gpus,
}

/// GPUs a stage occupies: a whole number of devices of its own, or a fraction (0 < f < 1) of one
/// device that it shares with other fractional stages (`gpus: 0.25` lets four share one id).
/// Kept in thousandths, so packing is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gpus(u32);

impl Gpus {
    /// Thousandths of a device in one device.
    pub const WHOLE: u32 = 1000;

    pub fn devices(n: usize) -> Gpus {
        Gpus(n as u32 * Gpus::WHOLE)
    }
    /// From a number of devices: whole numbers, or one fraction in [0.001, 1) in thousandths.
    pub fn parse(v: f64) -> Result<Gpus, String> {
        let milli = (v * Gpus::WHOLE as f64).round();
        if !v.is_finite() || v < 0.0 {
            return Err(format!("`gpus` must be a number of devices, got {v}"));
        }
        if v > 1.0 && v.fract() != 0.0 {
            return Err(format!(
                "`gpus: {v}`: above one device, a stage takes whole devices (a fraction shares one)"
            ));
        }
        if v > 0.0 && (milli < 1.0 || (milli - v * Gpus::WHOLE as f64).abs() > 1e-6) {
            return Err(format!("`gpus: {v}`: fractions go in steps of 0.001"));
        }
        Ok(Gpus(milli as u32))
    }
    /// Thousandths of a device.
    pub fn milli(self) -> u32 {
        self.0
    }
    pub fn is_fraction(self) -> bool {
        self.0 > 0 && self.0 < Gpus::WHOLE
    }
    /// Whole devices taken (0 for a fraction).
    pub fn whole(self) -> usize {
        if self.is_fraction() {
            0
        } else {
            (self.0 / Gpus::WHOLE) as usize
        }
    }
    /// Devices touched: a fraction touches one.
    pub fn touched(self) -> usize {
        self.0.div_ceil(Gpus::WHOLE) as usize
    }
}

impl std::fmt::Display for Gpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0 as f64 / Gpus::WHOLE as f64)
    }
}

impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Gpus, D::Error> {
        Gpus::parse(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Gpus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / Gpus::WHOLE as f64)
    }
}

fn one() -> usize {
    1
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 1,
            gpus: Gpus::default(),
        }
    }
}

/// `search:` on a stage: `space` is added to the matrix (every combination: a grid); with
/// `sample: N`, only N of the space's combinations are kept, chosen by a seeded hash of each
/// combination, so adding a value keeps the other sampled trials unless the new one displaces
/// them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    pub space: IndexMap<String, Vec<Value>>,
    #[serde(default)]
    pub sample: Option<usize>,
    #[serde(default)]
    pub seed: u64,
}

/// A program line: a string runs through `sh -c`, a list is executed directly.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "`command` must be a string (run by bash) or a list of strings (run directly)"
)]
pub enum RawCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub kind: Spanned<String>,
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    #[serde(default)]
    pub with: Option<Spanned<IndexMap<String, Value>>>,
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Variables to expand over: the stage becomes one instance per combination.
    #[serde(default)]
    pub matrix: Option<Spanned<IndexMap<String, Vec<Value>>>>,
    /// Combinations (partial bindings) left out of the matrix.
    #[serde(default)]
    pub exclude: Vec<Spanned<IndexMap<String, Value>>>,
    /// A search space: more matrix variables, of which a seeded sample may be taken.
    #[serde(default)]
    pub search: Option<Spanned<RawSearch>>,
    // `command` kind fields.
    #[serde(default)]
    pub command: Option<Spanned<RawCommand>>,
    /// Files (relative to the pipeline file) whose content is part of the cache key.
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    /// Paths (relative to the output directory) the command must produce.
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<String, Spanned<String>>,
    /// The interpreter, for a stage that runs Python.
    #[serde(default)]
    pub python: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
}
