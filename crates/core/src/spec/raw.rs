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
/// What a stage may take and how it is retried; none of it is part of the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "one")]
    pub cpus: usize,
    #[serde(default)]
    pub gpus: Gpus,
    /// Attempts after a failed one (unset: the pipeline's default, else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Wall-clock limit of one attempt (unset: the pipeline's default, else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeLimit>,
    /// Memory one attempt may use, requested from SLURM (unset: the pipeline's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<Memory>,
}

impl Resources {
    /// The stage's own values, and the defaults' for retries, time and mem it leaves unset.
    /// (cpus and gpus come whole from one side, as they always have.)
    pub fn with_defaults(own: Option<Resources>, defaults: Resources) -> Resources {
        match own {
            None => defaults,
            Some(r) => Resources {
                retries: r.retries.or(defaults.retries),
                time: r.time.or(defaults.time),
                mem: r.mem.or(defaults.mem),
                ..r
            },
        }
    }
}

/// A wall-clock limit in whole seconds: `2h`, `90m`, `1h30m`, `45s`, `1d`, or SLURM's
/// `[D-]HH:MM:SS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeLimit(u64);

/// A resource request that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("`time: {0}`: expected a duration such as 2h, 90m, 1h30m, 45s or 1-00:00:00")]
    Time(String),
    #[error("`time: {0}`: a number needs a unit (s, m, h or d)")]
    TimeUnit(String),
    #[error("`time: {0}`: the limit must be at least 1s")]
    TimeZero(String),
    #[error("`mem: {0}`: expected a size such as 16G, 512M or 1T")]
    Memory(String),
    #[error("`mem: {0}`: at least 1M")]
    MemoryZero(String),
    #[error("`gpus` must be a number of devices, got {0}")]
    Gpus(f64),
    #[error("`gpus: {0}`: above one device, a stage takes whole devices (a fraction shares one)")]
    GpusFraction(f64),
    #[error("`gpus: {0}`: fractions go in steps of 0.001")]
    GpusStep(f64),
}

impl TimeLimit {
    pub fn from_secs(s: u64) -> TimeLimit {
        TimeLimit(s)
    }
    pub fn secs(self) -> u64 {
        self.0
    }
    pub fn parse(text: &str) -> Result<TimeLimit, ResourceError> {
        let t = text.trim();
        let bad = || ResourceError::Time(text.to_string());
        let secs = if t.contains(':') {
            let (days, clock) = match t.split_once('-') {
                Some((d, c)) => (d.parse::<u64>().map_err(|_| bad())?, c),
                None => (0, t),
            };
            let parts: Vec<u64> = clock
                .split(':')
                .map(|p| p.parse::<u64>().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            let [h, m, s] = parts[..] else {
                return Err(bad());
            };
            if m >= 60 || s >= 60 {
                return Err(bad());
            }
            days * 86_400 + h * 3_600 + m * 60 + s
        } else {
            let mut total = 0u64;
            let mut digits = String::new();
            for c in t.chars().filter(|c| !c.is_whitespace()) {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                let unit = match c {
                    'd' => 86_400,
                    'h' => 3_600,
                    'm' => 60,
                    's' => 1,
                    _ => return Err(bad()),
                };
                let n: u64 = digits.parse().map_err(|_| bad())?;
                total = n
                    .checked_mul(unit)
                    .and_then(|x| total.checked_add(x))
                    .ok_or_else(bad)?;
                digits.clear();
            }
            if !digits.is_empty() {
                return Err(ResourceError::TimeUnit(text.to_string()));
            }
            total
        };
        if secs == 0 {
            return Err(ResourceError::TimeZero(text.to_string()));
        }
        Ok(TimeLimit(secs))
    }
    /// SLURM's `--time` value, `D-HH:MM:SS`.
    pub fn slurm(self) -> String {
        let s = self.0;
        format!(
            "{}-{:02}:{:02}:{:02}",
            s / 86_400,
            s % 86_400 / 3_600,
            s % 3_600 / 60,
            s % 60
        )
    }
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = self.0;
        for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if s >= n {
                write!(f, "{}{unit}", s / n)?;
                s %= n;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TimeLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimeLimit, D::Error> {
        TimeLimit::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for TimeLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Memory in MiB: `16G`, `512M`, `1T`, `2048K` (as SLURM's `--mem` reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Memory(u64);

impl Memory {
    pub fn mib(self) -> u64 {
        self.0
    }
    pub fn parse(text: &str) -> Result<Memory, ResourceError> {
        let t = text.trim();
        let bad = || ResourceError::Memory(text.to_string());
        let unit = t.chars().last().ok_or_else(bad)?.to_ascii_uppercase();
        let (n, per) = match unit {
            'K' => (&t[..t.len() - 1], 0),
            'M' => (&t[..t.len() - 1], 1),
            'G' => (&t[..t.len() - 1], 1024),
            'T' => (&t[..t.len() - 1], 1024 * 1024),
            _ => return Err(bad()),
        };
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let mib = if per == 0 {
            n.div_ceil(1024)
        } else {
            n.checked_mul(per).ok_or_else(bad)?
        };
        if mib == 0 {
            return Err(ResourceError::MemoryZero(text.to_string()));
        }
        Ok(Memory(mib))
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(1024) {
            write!(f, "{}G", self.0 / 1024)
        } else {
            write!(f, "{}M", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Memory {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Memory, D::Error> {
        Memory::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Memory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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
    pub fn parse(v: f64) -> Result<Gpus, ResourceError> {
        let milli = (v * Gpus::WHOLE as f64).round();
        if !v.is_finite() || v < 0.0 {
            return Err(ResourceError::Gpus(v));
        }
        if v > 1.0 && v.fract() != 0.0 {
            return Err(ResourceError::GpusFraction(v));
        }
        if v > 0.0 && (milli < 1.0 || (milli - v * Gpus::WHOLE as f64).abs() > 1e-6) {
            return Err(ResourceError::GpusStep(v));
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
            retries: None,
            time: None,
            mem: None,
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

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn time_limits_read_units_and_slurm_clocks() {
        let t = |s: &str| TimeLimit::parse(s).map(TimeLimit::secs);
        assert_eq!(t("2h"), Ok(7_200));
        assert_eq!(t("1h30m"), Ok(5_400));
        assert_eq!(t("1h 30m 5s"), Ok(5_405));
        assert_eq!(t("1d"), Ok(86_400));
        assert_eq!(t("01:02:03"), Ok(3_723));
        assert_eq!(t("2-00:00:01"), Ok(172_801));
        for bad in ["", "90", "2x", "h", "0s", "1:60:00", "1:2", "-1h"] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let limit = TimeLimit::parse("1d2h3m4s").unwrap();
        assert_eq!(limit.to_string(), "1d2h3m4s");
        assert_eq!(limit.slurm(), "1-02:03:04");
        assert_eq!(TimeLimit::parse("2h").unwrap().to_string(), "2h");
    }

    #[test]
    fn memory_reads_slurm_sizes_in_mib() {
        let m = |s: &str| Memory::parse(s).map(Memory::mib);
        assert_eq!(m("16G"), Ok(16_384));
        assert_eq!(m("512M"), Ok(512));
        assert_eq!(m("1t"), Ok(1_048_576));
        assert_eq!(m("1536K"), Ok(2));
        for bad in ["", "16", "G", "0M", "1.5G", "16Q"] {
            assert!(m(bad).is_err(), "{bad}");
        }
        assert_eq!(Memory::parse("16G").unwrap().to_string(), "16G");
        assert_eq!(Memory::parse("1000M").unwrap().to_string(), "1000M");
    }

    #[test]
    fn a_stage_inherits_the_limits_it_leaves_unset() {
        let defaults = Resources {
            cpus: 4,
            retries: Some(2),
            time: TimeLimit::parse("1h").ok(),
            ..Resources::default()
        };
        let own = Resources {
            time: TimeLimit::parse("5m").ok(),
            ..Resources::default()
        };
        let r = Resources::with_defaults(Some(own), defaults);
        assert_eq!(
            (r.cpus, r.retries, r.time.map(TimeLimit::secs), r.mem),
            (1, Some(2), Some(300), None)
        );
        assert_eq!(Resources::with_defaults(None, defaults), defaults);
    }
}
