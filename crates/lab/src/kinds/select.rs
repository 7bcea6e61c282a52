//! `select`: picks the best of a group of trials from their evaluations, and writes
//! `selected.json` (the chosen trial, its values, its score, ties) for an `unlearn` stage to take
//! its parameters from (`with: {from: SELECT_STAGE}`). Every trial's score is in the stage's log:
//! the outputs hold only the choice, so a new trial that does not win leaves the stages that use
//! the choice cached.
//!
//! The trials are the evaluations among its needs other than `reference` (retrain's evaluation):
//! evaluate stages, or command stages whose metrics are an evaluation's ([`super::is_evaluation`]).
//! A trial's values are its matrix bindings of the variables named in `vars` (a trial of
//! `evaluate` with `matrix: {lr: [...], epochs: [...]}` has `lr: 0.01, epochs: 5`), so the search
//! space is an ordinary matrix and every trial an ordinary cached stage. The criterion is the gap
//! to retrain ([`crate::metrics::gap_to_retrain`]), lower is better. A diverged trial, or one
//! without every gap metric the reference has, is recorded and never chosen; ties keep the first
//! trial in need order and are listed.

use crate::metrics::{NoGap, gap_to_retrain};
use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::{Kind, Requirement, Stage};
use camu_core::stage::io::{read_json, write_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use serde_json::{Map, Value, json};

pub struct Select;

/// Why a select stage cannot choose from its inputs.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("the reference `{0}` has no metrics.json among the inputs")]
    NoReference(String),
    #[error("no trials: none of the other inputs is an evaluate stage")]
    NoTrials,
}

impl From<SelectError> for StageError {
    fn from(e: SelectError) -> Self {
        StageError::Kind(Box::new(e))
    }
}

const KEYS: &[&str] = &["reference", "vars", "criterion"];

/// `vars` as a list of names.
pub fn vars(params: &Map<String, Value>) -> Result<Vec<String>, ParamError> {
    let list = params.get("vars").ok_or_else(|| {
        ParamError::Invalid(
            "parameter `vars` is required: the searched matrix variables, e.g. [lr, epochs]".into(),
        )
    })?;
    let names: Option<Vec<String>> = list
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or(None);
    match names {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(ParamError::Invalid(
            "parameter `vars` must be a non-empty list of matrix variable names".into(),
        )),
    }
}

impl Kind for Select {
    fn name(&self) -> &'static str {
        "select"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        // 2: trials of the same setting (several seeds) are scored together, each against the
        // reference evaluation of its own seed.
        2
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, KEYS)?;
        let p = Params(params);
        Params::required("reference", p.opt_str("reference")?)?;
        match p.str("criterion", "gap")? {
            "gap" => {}
            other => {
                return Err(ParamError::Invalid(format!(
                    "unknown criterion `{other}` (known: gap)"
                )));
            }
        }
        vars(params).map(|_| ())
    }
    fn cutoff(&self) -> bool {
        true
    }
    fn provides(&self) -> &'static [&'static str] {
        &["selected.json"]
    }
    fn requires(&self, params: &Map<String, Value>) -> Vec<Requirement> {
        vec![Requirement::named_by_each(
            "metrics.json",
            "reference",
            params,
        )]
    }
    /// No peeking: the trials and the reference are scored on the validation part, never on
    /// the test part the report uses; every `vars` entry is a matrix variable of every trial.
    fn check_needs<'a>(
        &self,
        stage: &'a Stage,
        need: &dyn Fn(&str) -> Option<&'a Stage>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let reference = Params(&stage.params).opt_str("reference").ok().flatten();
        let needs: Vec<&Stage> = stage.needs.iter().filter_map(|n| need(n)).collect();
        let is_reference = |n: &Stage| reference.is_some_and(|r| n.name == r || n.base == r);
        let on_validation =
            |n: &Stage| n.params.get("on").and_then(Value::as_str) == Some("validation");
        let trials: Vec<&Stage> = needs
            .iter()
            .copied()
            .filter(|n| !is_reference(n) && matches!(n.kind.as_str(), "evaluate" | "command"))
            .collect();
        // A reference bound to a searched variable is a point of the search, not retrain's
        // evaluation (several references are fine: one per tuning seed).
        let searched = vars(&stage.params).unwrap_or_default();
        for r in needs.iter().filter(|n| is_reference(n)) {
            let bound = searched
                .iter()
                .find(|v| r.bindings.contains_key(v.as_str()));
            if bound.is_some() || trials.iter().any(|t| t.base == r.base) {
                out.push(format!(
                    "its reference `{}` is one of the trials{}: the reference is the retrained model's evaluation",
                    r.name,
                    bound.map_or(String::new(), |v| format!(" (it sets the searched `{v}`)"))
                ));
            }
        }
        if trials.is_empty() {
            out.push(format!(
                "no trials among its needs: a select needs `evaluate` stages (with `on: validation`) besides its reference `{}`",
                reference.unwrap_or("-")
            ));
        }
        for n in needs
            .iter()
            .filter(|n| n.kind == "evaluate" && !on_validation(n))
        {
            let role = if is_reference(n) {
                "its reference"
            } else {
                "trial"
            };
            out.push(format!(
                "{role} `{}` is evaluated on the test part; choosing on it would peek at the data the report uses: give it `on: validation`",
                n.name
            ));
        }
        if let Ok(vars) = vars(&stage.params) {
            for t in &trials {
                for v in vars.iter().filter(|v| !t.bindings.contains_key(v.as_str())) {
                    let known: Vec<&str> = t.bindings.keys().map(String::as_str).collect();
                    out.push(format!(
                        "`vars` names `{v}`, which is not a matrix variable of trial `{}` (its variables: {})",
                        t.name,
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ));
                }
            }
        }
        out
    }
}

/// An evaluation among a select stage's inputs: its stage, its matrix bindings, its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub stage: String,
    pub bindings: Map<String, Value>,
    pub metrics: Map<String, Value>,
}

impl Evaluation {
    /// An evaluation of stage `stage` with matrix `bindings`.
    pub fn new(
        stage: &str,
        bindings: &indexmap::IndexMap<String, Value>,
        metrics: Map<String, Value>,
    ) -> Evaluation {
        Evaluation {
            stage: stage.to_string(),
            bindings: bindings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            metrics,
        }
    }
}

/// Why a trial, or a setting's trials, cannot be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Excluded {
    #[error("diverged")]
    Diverged,
    #[error(transparent)]
    Gap(#[from] NoGap),
    #[error("no reference evaluation has its bindings")]
    NoReference,
    #[error("{0} reference evaluations have its bindings")]
    SeveralReferences(usize),
    /// Some of a setting's runs are excluded (the first one's reason).
    #[error("{why} in {failed} of {runs} runs")]
    InRuns {
        why: Box<Excluded>,
        failed: usize,
        runs: usize,
    },
}

/// A trial's gap to its reference, or why there is none.
fn score(trial: &Evaluation, references: &[Evaluation]) -> Result<f64, Excluded> {
    if trial.metrics.get("diverged") == Some(&json!(true)) {
        return Err(Excluded::Diverged);
    }
    let reference = reference_for(trial, references)?;
    let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
    Ok(gap_to_retrain(
        |k| get(&trial.metrics, k),
        |k| get(reference, k),
    )?)
}

/// The reference evaluation a trial is compared with: the only one, or, when there are several
/// (retrain evaluated on each tuning seed), the one whose matrix bindings agree with the trial's.
fn reference_for<'a>(
    trial: &Evaluation,
    references: &'a [Evaluation],
) -> Result<&'a Map<String, Value>, Excluded> {
    if let [only] = references {
        return Ok(&only.metrics);
    }
    let agree = |r: &&Evaluation| {
        r.bindings
            .iter()
            .all(|(k, v)| trial.bindings.get(k).is_none_or(|x| x == v))
    };
    let matching: Vec<&Evaluation> = references.iter().filter(agree).collect();
    match matching.as_slice() {
        [r] => Ok(&r.metrics),
        [] => Err(Excluded::NoReference),
        many => Err(Excluded::SeveralReferences(many.len())),
    }
}

/// One setting of the searched variables: its trials (several when run on several seeds) and
/// their mean gap, or why it is excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub values: Map<String, Value>,
    /// The trials' stages, in need order.
    pub runs: Vec<String>,
    pub gap: Result<f64, Excluded>,
}

/// A selection: every setting, and the chosen one.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub settings: Vec<Setting>,
    /// The index of the chosen setting in `settings`.
    pub chosen: Option<usize>,
    /// Other settings whose gap equals the chosen one's (their first trials).
    pub ties: Vec<String>,
}

impl Choice {
    /// The chosen trial's stage (the setting's first run).
    pub fn trial(&self) -> Option<&str> {
        Some(self.settings[self.chosen?].runs[0].as_str())
    }
    pub fn values(&self) -> Option<&Map<String, Value>> {
        Some(&self.settings[self.chosen?].values)
    }
    pub fn gap(&self) -> Option<f64> {
        self.settings[self.chosen?].gap.as_ref().ok().copied()
    }

    /// `selected.json`: the choice without the table of settings (which goes to the log), so a
    /// new trial that does not win leaves the stages that use the choice cached.
    pub fn selected_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert(
            "criterion".into(),
            json!("gap_to_retrain (lower is better)"),
        );
        out.insert("trial".into(), json!(self.trial()));
        out.insert("values".into(), json!(self.values()));
        match self.chosen {
            Some(_) => {
                out.insert("gap_to_retrain".into(), json!(self.gap()));
                out.insert("ties".into(), json!(self.ties));
            }
            None => {
                out.insert("note".into(), json!(NO_CHOICE));
            }
        }
        out
    }
}

/// Why a selection chose nothing.
pub const NO_CHOICE: &str = "no trial can be chosen: every trial diverged or lacks a gap metric";

/// A trial's stage and its gap.
type Scored<'a> = (&'a str, Result<f64, Excluded>);

/// Scores closer than this are a tie (rounding in the metrics' sums).
const TIE: f64 = 1e-12;

/// The choice among trials, and the table of every setting. Trials with the same values of
/// `vars` (the same setting run on several seeds, say) are one setting, scored by their mean gap
/// and excluded if any of them is: a setting that diverges on one seed is not chosen.
pub fn choose(trials: &[Evaluation], references: &[Evaluation], vars: &[String]) -> Choice {
    // Settings in the order their first trial comes, with every trial's score.
    let mut scored: Vec<(Map<String, Value>, Vec<Scored<'_>>)> = Vec::new();
    for t in trials {
        let values: Map<String, Value> = vars
            .iter()
            .filter_map(|v| t.bindings.get(v).map(|x| (v.clone(), x.clone())))
            .collect();
        let s = score(t, references);
        match scored.iter_mut().find(|(v, _)| *v == values) {
            Some((_, runs)) => runs.push((&t.stage, s)),
            None => scored.push((values, vec![(&t.stage, s)])),
        }
    }
    let mut settings = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for (i, (values, runs)) in scored.into_iter().enumerate() {
        let failed: Vec<&Excluded> = runs.iter().filter_map(|(_, s)| s.as_ref().err()).collect();
        let gap = match failed.first() {
            None => Ok(runs
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok())
                .sum::<f64>()
                / runs.len() as f64),
            Some(why) if runs.len() == 1 => Err((*why).clone()),
            Some(why) => Err(Excluded::InRuns {
                why: Box::new((*why).clone()),
                failed: failed.len(),
                runs: runs.len(),
            }),
        };
        if let Ok(g) = gap
            && best.is_none_or(|(b, _)| g < b - TIE)
        {
            best = Some((g, i));
        }
        settings.push(Setting {
            values,
            runs: runs.iter().map(|(s, _)| s.to_string()).collect(),
            gap,
        });
    }
    let ties = match best {
        Some((g, i)) => settings
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && s.gap.as_ref().is_ok_and(|x| (x - g).abs() <= TIE))
            .map(|(_, s)| s.runs[0].clone())
            .collect(),
        None => Vec::new(),
    };
    Choice {
        settings,
        chosen: best.map(|(_, i)| i),
        ties,
    }
}

impl Runner for Select {
    fn kind(&self) -> &'static str {
        "select"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let p = Params(&job.params);
        let reference = p.str("reference", "")?;
        let vars = vars(&job.params)?;
        let mut references = Vec::new();
        let mut trials = Vec::new();
        for (name, input) in &job.inputs {
            let Ok(metrics) = read_json::<Map<String, Value>>(&input.dir.join("metrics.json"))
            else {
                continue;
            };
            let evaluation = Evaluation::new(name, &input.bindings, metrics);
            if name == reference || input.base == reference {
                references.push(evaluation);
            } else if super::is_evaluation(&input.kind, &evaluation.metrics) {
                trials.push(evaluation);
            }
        }
        if references.is_empty() {
            return Err(SelectError::NoReference(reference.to_string()).into());
        }
        if trials.is_empty() {
            return Err(SelectError::NoTrials.into());
        }
        let choice = choose(&trials, &references, &vars);
        // The table of every trial goes to the log, not to the outputs.
        eprintln!("trials (gap to retrain, lower is better):");
        for s in &choice.settings {
            let score = match &s.gap {
                Ok(g) => format!("{g:.4}"),
                Err(why) => format!("excluded: {why}"),
            };
            eprintln!(
                "  {} {} {score}",
                s.runs[0],
                Value::Object(s.values.clone())
            );
        }
        let chosen = choice.selected_json();
        eprintln!("chosen: {} {}", chosen["trial"], chosen["values"]);
        write_json(job, "selected.json", &chosen)?;
        let mut m = Map::new();
        m.insert("trial".into(), chosen["trial"].clone());
        m.insert(
            "gap_to_retrain".into(),
            chosen.get("gap_to_retrain").cloned().unwrap_or(Value::Null),
        );
        write_metrics(job, &m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(ra: f64, fa: f64, ta: f64, mia: f64) -> Map<String, Value> {
        let v = json!({"acc_remain_train": ra, "acc_forget_train": fa, "acc_test": ta, "mia_camu": mia});
        v.as_object().unwrap().clone()
    }

    /// An evaluation whose bindings are those its name shows.
    fn ev(stage: &str, metrics: Map<String, Value>) -> Evaluation {
        let mut bindings = indexmap::IndexMap::new();
        if let Some((_, rest)) = stage.split_once('@') {
            for (k, v) in rest.split(',').filter_map(|kv| kv.split_once('=')) {
                bindings.insert(k.to_string(), serde_json::from_str(v).unwrap_or(json!(v)));
            }
        }
        Evaluation::new(stage, &bindings, metrics)
    }

    /// The choice as selected.json, with the table of settings under `trials`.
    fn old(c: &Choice) -> Value {
        let mut out = c.selected_json();
        let table: Vec<Value> = c
            .settings
            .iter()
            .map(|s| {
                let mut row = json!({"stage": s.runs[0], "values": s.values,
                    "gap_to_retrain": s.gap.as_ref().ok(),
                    "excluded": s.gap.as_ref().err().map(|e| e.to_string())});
                if s.runs.len() > 1 {
                    row["runs"] = json!(s.runs);
                }
                row
            })
            .collect();
        out.insert("trials".into(), json!(table));
        Value::Object(out)
    }

    /// An evaluation of a model with non-finite outputs.
    fn diverged() -> Map<String, Value> {
        let mut m = metrics(0.9, 0.0, 0.85, 0.4);
        m.insert("diverged".into(), json!(true));
        m
    }

    #[test]
    fn picks_the_smallest_gap_and_records_ties_and_divergence() {
        let reference = metrics(0.9, 0.0, 0.85, 0.4);
        let trials = vec![
            ev("evaluate@lr=0.1,epochs=2", metrics(0.8, 0.2, 0.75, 0.5)),
            ev("evaluate@lr=0.01,epochs=2", metrics(0.89, 0.01, 0.84, 0.41)),
            ev("evaluate@lr=0.01,epochs=5", metrics(0.91, 0.01, 0.86, 0.39)),
            ev("evaluate@lr=1,epochs=2", diverged()),
        ];
        let reference = [ev("retrain_eval", reference)];
        let out = old(&choose(
            &trials,
            &reference,
            &["lr".into(), "epochs".into()],
        ));
        assert_eq!(out["trial"], "evaluate@lr=0.01,epochs=2");
        assert_eq!(out["values"], json!({"lr": 0.01, "epochs": 2}));
        assert_eq!(out["ties"], json!(["evaluate@lr=0.01,epochs=5"]));
        assert_eq!(out["trials"][3]["excluded"], "diverged");
        assert!((out["gap_to_retrain"].as_f64().unwrap() - 0.01).abs() < 1e-12);
        let none = old(&choose(&trials[3..], &reference, &["lr".into()]));
        assert_eq!(none["trial"], Value::Null);
    }

    #[test]
    fn a_setting_run_on_several_seeds_is_scored_by_its_mean_and_excluded_if_any_diverges() {
        let reference = metrics(0.9, 0.0, 0.85, 0.4);
        let trials = vec![
            // lr 0.1: the best run of all on seed 0, diverged on seed 1.
            ev("e@lr=0.1,seed=0", metrics(0.9, 0.0, 0.85, 0.4)),
            ev("e@lr=0.1,seed=1", diverged()),
            // lr 0.01: gaps 0.01 and 0.03, mean 0.02.
            ev("e@lr=0.01,seed=0", metrics(0.89, 0.01, 0.84, 0.41)),
            ev("e@lr=0.01,seed=1", metrics(0.87, 0.03, 0.82, 0.43)),
            // lr 0.001: gap 0.025 on both seeds.
            ev("e@lr=0.001,seed=0", metrics(0.875, 0.025, 0.825, 0.425)),
            ev("e@lr=0.001,seed=1", metrics(0.875, 0.025, 0.825, 0.425)),
        ];
        let reference = [ev("retrain_eval", reference)];
        let out = old(&choose(&trials, &reference, &["lr".into()]));
        assert_eq!(out["values"], json!({"lr": 0.01}), "{out:?}");
        assert_eq!(out["trial"], "e@lr=0.01,seed=0");
        assert!((out["gap_to_retrain"].as_f64().unwrap() - 0.02).abs() < 1e-12);
        let table = out["trials"].as_array().unwrap();
        assert_eq!(table.len(), 3, "one entry per setting");
        assert_eq!(table[0]["excluded"], "diverged in 1 of 2 runs");
        assert_eq!(
            table[1]["runs"],
            json!(["e@lr=0.01,seed=0", "e@lr=0.01,seed=1"])
        );
    }

    #[test]
    fn each_trial_is_compared_with_the_reference_of_its_own_seed() {
        let references = [
            ev("r@seed=0", metrics(0.9, 0.0, 0.85, 0.4)),
            ev("r@seed=1", metrics(0.8, 0.0, 0.75, 0.4)),
        ];
        let trials = vec![
            // Equal to retrain on each seed: gap 0 against its own seed's reference.
            ev("e@lr=0.1,seed=0", metrics(0.9, 0.0, 0.85, 0.4)),
            ev("e@lr=0.1,seed=1", metrics(0.8, 0.0, 0.75, 0.4)),
            // 0.01 from seed 0's reference on both seeds; 0.05 from seed 1's.
            ev("e@lr=0.01,seed=0", metrics(0.89, 0.01, 0.84, 0.41)),
            ev("e@lr=0.01,seed=1", metrics(0.89, 0.01, 0.84, 0.41)),
            ev("e@lr=0.5,seed=2", metrics(0.9, 0.0, 0.85, 0.4)),
        ];
        let out = old(&choose(&trials, &references, &["lr".into()]));
        assert_eq!(out["values"], json!({"lr": 0.1}), "{out:?}");
        assert!(out["gap_to_retrain"].as_f64().unwrap().abs() < 1e-12);
        assert!((out["trials"][1]["gap_to_retrain"].as_f64().unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(
            out["trials"][2]["excluded"],
            "no reference evaluation has its bindings"
        );
        // Against seed 0's reference alone, lr 0.01 would have won.
        let out = old(&choose(&trials[..4], &references[..1], &["lr".into()]));
        assert_eq!(out["values"], json!({"lr": 0.01}), "{out:?}");
    }
}
