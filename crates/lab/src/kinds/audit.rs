//! `audit`: per-example forgetting quality from many runs (the NeurIPS 2023 unlearning
//! competition's epsilon per forget example, F and final score; a per-example likelihood-ratio
//! attack in the manner of U-LiRA). Its needs hold N retrained models (a matrix over a run
//! index, each trained on Dr with its own seed) and N unlearned models of one method (the same
//! matrix, each run from the original model with its own seed); `retrained` and `unlearned`
//! name the two matrix stages. The arithmetic is [`crate::audit`]; the run (model outputs) is in
//! camu-torch.
//!
//! Outputs: `metrics.json` (F and its bootstrap interval, the final score, U-LiRA's accuracy and
//! AUC, the runs' mean RA and TA on each side, the epsilons' histogram in F's bins, the ten
//! hardest examples, provenance) and `epsilons.json` (every audited forget example's training-set
//! index, its epsilon and its points).

use camu_core::params::{ParamError, parse};
use camu_core::spec::{Kind, Requirement, Stage};
use serde::Deserialize;
use serde_json::{Map, Value};

pub struct Audit;

/// `audit`'s parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The matrix stage of retrained models (every instance among the needs is one run).
    pub retrained: String,
    /// The matrix stage of unlearned models of one method.
    pub unlearned: String,
    pub split: Option<String>,
    /// Audit at most this many forget examples (the first in the split's order); default all.
    pub examples: Option<usize>,
    /// Use the first N runs of each side (in the runs' name order, numbers compared as numbers:
    /// `run=2` before `run=10`); default all. A matrix over `runs` audits one set of models at
    /// several N.
    pub runs: Option<usize>,
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    #[serde(default = "auto")]
    pub device: String,
}

fn batch_size() -> usize {
    512
}
fn auto() -> String {
    "auto".into()
}

/// The fewest runs per side: U-LiRA's leave-one-out fit needs two others per side, and F's bins
/// (`ceil(ln(N - 1))`) are empty below 3.
pub const MIN_RUNS: usize = 3;

impl AuditParams {
    pub fn read(params: &Map<String, Value>) -> Result<AuditParams, ParamError> {
        let a: AuditParams = parse(params)?;
        if a.retrained == a.unlearned {
            return Err(ParamError::Invalid(
                "`retrained` and `unlearned` name the same stage".into(),
            ));
        }
        if a.batch_size == 0 || a.examples == Some(0) {
            return Err(ParamError::Range {
                key: if a.batch_size == 0 {
                    "batch_size"
                } else {
                    "examples"
                }
                .into(),
                rule: "be at least 1",
            });
        }
        if a.runs.is_some_and(|n| n < MIN_RUNS) {
            return Err(ParamError::Invalid(format!(
                "`runs` must be at least {MIN_RUNS}"
            )));
        }
        Ok(a)
    }
}

impl Kind for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        1
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        AuditParams::read(params).map(|_| ())
    }
    fn provides(&self) -> &'static [&'static str] {
        &["epsilons.json"]
    }
    fn requires(&self, params: &Map<String, Value>) -> Vec<Requirement> {
        vec![
            Requirement::any("dataset.json"),
            Requirement::named_by("split.json", "split", params),
            Requirement::named_by_each("model.safetensors", "retrained", params),
            Requirement::named_by_each("model.safetensors", "unlearned", params),
        ]
    }
    /// The same number of runs on each side, at least [`MIN_RUNS`]: F compares the two sides
    /// run for run, as the competition's scoring does.
    fn check_needs<'a>(
        &self,
        stage: &'a Stage,
        need: &dyn Fn(&str) -> Option<&'a Stage>,
    ) -> Vec<String> {
        let Ok(p) = AuditParams::read(&stage.params) else {
            return Vec::new();
        };
        let count = |base: &str| {
            stage
                .needs
                .iter()
                .filter_map(|n| need(n))
                .filter(|n| n.name == base || n.base == base)
                .count()
        };
        let (r, u) = (count(&p.retrained), count(&p.unlearned));
        let mut out = Vec::new();
        if let Some(n) = p.runs.filter(|&n| n > r.min(u)) {
            out.push(format!(
                "`runs: {n}`, but its needs hold {r} retrained and {u} unlearned runs"
            ));
            return out;
        }
        let (r, u) = match p.runs {
            Some(n) => (n, n),
            None => (r, u),
        };
        for (role, name, n) in [
            ("retrained", &p.retrained, r),
            ("unlearned", &p.unlearned, u),
        ] {
            if n < MIN_RUNS {
                out.push(format!(
                    "`{role}: {name}` gives {n} run(s) among its needs; the audit needs at least {MIN_RUNS} per side (a matrix over a run index)"
                ));
            }
        }
        if out.is_empty() && r != u {
            out.push(format!(
                "{r} retrained runs and {u} unlearned runs: the audit compares the sides run for run, so they must be as many"
            ));
        }
        out
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
}

/// Orders stage names with their unsigned integers compared as numbers (`run=2` before
/// `run=10`; signs and decimal points are ordinary characters).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, xa), (db, xb)) in ca.iter().zip(&cb) {
        let o = if *da && *db {
            let (ta, tb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then(ta.cmp(tb))
        } else {
            xa.cmp(xb)
        };
        if o.is_ne() {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn run_numbers_sort_as_numbers() {
        let mut v = vec![
            "r@run=10",
            "r@run=2",
            "r@run=1,seed=3",
            "r@run=1,seed=12",
            "r@run=0",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "r@run=0",
                "r@run=1,seed=3",
                "r@run=1,seed=12",
                "r@run=2",
                "r@run=10"
            ]
        );
    }
}
