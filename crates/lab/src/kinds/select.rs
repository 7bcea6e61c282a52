//! `select`: picks the best of a group of trials from their evaluations, and writes
//! `selected.json` (the chosen trial, its values, its score, ties) for an `unlearn` stage to take
//! its parameters from (`with: {from: SELECT_STAGE}`). Every trial's score is in the stage's log:
//! the outputs hold only the choice, so a new trial that does not win leaves the stages that use
//! the choice cached.
//!
//! The trials are the evaluate stages among its needs other than `reference` (retrain's
//! evaluation). A trial's values are the matrix variables named in `vars`, read from its stage
//! name (`evaluate@scenario=class,lr=0.01,epochs=5` gives `lr: 0.01, epochs: 5`), so the search
//! space is an ordinary matrix and every trial an ordinary cached stage. The criterion is the gap
//! to retrain: the mean absolute difference over the gap metrics (RA, FA, TA, MIA; those the
//! reference has), lower is better. A diverged trial, or one without every gap metric, is recorded and never chosen; ties
//! keep the first trial in need order and are listed.

use crate::metrics::gap_metrics;
use camu_core::params::{ParamError, Params, check_keys};
use camu_core::spec::{Kind, Requirement, Stage};
use camu_core::stage::io::{read_json, write_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use serde_json::{Map, Value, json};

pub struct Select;

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
    fn version(&self) -> u32 {
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

/// The matrix bindings in an expanded stage name, as text.
fn bindings(stage: &str) -> Map<String, Value> {
    let Some((_, rest)) = stage.split_once('@') else {
        return Map::new();
    };
    rest.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            // Numbers stay numbers: `lr=0.01` selects the float 0.01.
            let value = serde_json::from_str::<Value>(v)
                .ok()
                .filter(|x| x.is_number() || x.is_boolean())
                .unwrap_or_else(|| json!(v));
            (k.to_string(), value)
        })
        .collect()
}

/// The gap to the reference over the gap metrics, or why there is none.
fn gap(trial: &Map<String, Value>, reference: &Map<String, Value>) -> Result<f64, String> {
    if trial.get("diverged") == Some(&json!(true)) {
        return Err("diverged".into());
    }
    // Over the gap metrics the reference has (an evaluation with `mia: false` has no MIA).
    let mut diffs = Vec::new();
    for m in gap_metrics() {
        let Some(b) = reference.get(m.key).and_then(Value::as_f64) else {
            continue;
        };
        match trial.get(m.key).and_then(Value::as_f64) {
            Some(a) => diffs.push((a - b).abs()),
            None => return Err(format!("no `{}`", m.key)),
        }
    }
    if diffs.is_empty() {
        return Err("the reference has none of the gap metrics".into());
    }
    Ok(diffs.iter().sum::<f64>() / diffs.len() as f64)
}

/// An evaluate stage's name and metrics.
pub type Named = (String, Map<String, Value>);

/// The reference evaluation a trial is compared with: the only one, or, when there are several
/// (retrain evaluated on each tuning seed), the one whose matrix bindings agree with the trial's.
fn reference_for<'a>(
    stage: &str,
    references: &'a [Named],
) -> Result<&'a Map<String, Value>, String> {
    if let [(_, only)] = references {
        return Ok(only);
    }
    let own = bindings(stage);
    let agree = |r: &&Named| {
        bindings(&r.0)
            .iter()
            .all(|(k, v)| own.get(k).is_none_or(|x| x == v))
    };
    let matching: Vec<&Named> = references.iter().filter(agree).collect();
    match matching.as_slice() {
        [(_, m)] => Ok(m),
        [] => Err("no reference evaluation has its bindings".into()),
        many => Err(format!(
            "{} reference evaluations have its bindings",
            many.len()
        )),
    }
}

/// A setting's values and each of its trials' stage and score.
type Setting<'a> = (Map<String, Value>, Vec<(&'a str, Result<f64, String>)>);

/// Scores closer than this are a tie (rounding in the metrics' sums).
const TIE: f64 = 1e-12;

/// The choice among trials (name, metrics), and the table of every setting. Trials with the same
/// values of `vars` (the same setting run on several seeds, say) are one entry, scored by their
/// mean gap and excluded if any of them is: a setting that diverges on one seed is not chosen.
pub fn choose(trials: &[Named], references: &[Named], vars: &[String]) -> Map<String, Value> {
    // Settings in the order their first trial comes, with every trial's score.
    let mut settings: Vec<Setting<'_>> = Vec::new();
    for (stage, metrics) in trials {
        let all = bindings(stage);
        let values: Map<String, Value> = vars
            .iter()
            .filter_map(|v| all.get(v).map(|x| (v.clone(), x.clone())))
            .collect();
        let score = reference_for(stage, references).and_then(|r| gap(metrics, r));
        match settings.iter_mut().find(|(v, _)| *v == values) {
            Some((_, runs)) => runs.push((stage, score)),
            None => settings.push((values, vec![(stage, score)])),
        }
    }
    let mut table = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for (i, (values, runs)) in settings.iter().enumerate() {
        let failed: Vec<&String> = runs.iter().filter_map(|(_, s)| s.as_ref().err()).collect();
        let score = match failed.first() {
            None => Ok(runs
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok())
                .sum::<f64>()
                / runs.len() as f64),
            Some(why) if runs.len() == 1 => Err((*why).clone()),
            Some(why) => Err(format!("{why} in {} of {} runs", failed.len(), runs.len())),
        };
        if let Ok(s) = score
            && best.is_none_or(|(b, _)| s < b - TIE)
        {
            best = Some((s, i));
        }
        let mut row = json!({
            "stage": runs[0].0,
            "values": values,
            "gap_to_retrain": score.as_ref().ok(),
            "excluded": score.err(),
        });
        if runs.len() > 1 {
            row["runs"] = json!(runs.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        }
        table.push(row);
    }
    let mut out = Map::new();
    out.insert(
        "criterion".into(),
        json!("gap_to_retrain (lower is better)"),
    );
    match best {
        Some((score, i)) => {
            let ties: Vec<&Value> = table
                .iter()
                .filter(|t| {
                    t["gap_to_retrain"]
                        .as_f64()
                        .is_some_and(|g| (g - score).abs() <= TIE)
                        && t["stage"] != table[i]["stage"]
                })
                .map(|t| &t["stage"])
                .collect();
            out.insert("trial".into(), table[i]["stage"].clone());
            out.insert("values".into(), table[i]["values"].clone());
            out.insert("gap_to_retrain".into(), json!(score));
            out.insert("ties".into(), json!(ties));
        }
        None => {
            out.insert("trial".into(), Value::Null);
            out.insert("values".into(), Value::Null);
            out.insert(
                "note".into(),
                json!("no trial can be chosen: every trial diverged or lacks a gap metric"),
            );
        }
    }
    out.insert("trials".into(), json!(table));
    out
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
        for (name, dir) in &job.inputs {
            let Ok(metrics) = read_json::<Map<String, Value>>(&dir.join("metrics.json")) else {
                continue;
            };
            if name == reference || name.split('@').next() == Some(reference) {
                references.push((name.clone(), metrics));
            } else if metrics.contains_key("acc_test") {
                trials.push((name.clone(), metrics));
            }
        }
        if references.is_empty() {
            return Err(format!(
                "the reference `{reference}` has no metrics.json among the inputs"
            )
            .into());
        }
        if trials.is_empty() {
            return Err("no trials: none of the other inputs is an evaluate stage".into());
        }
        let mut chosen = choose(&trials, &references, &vars);
        // The table of every trial goes to the log, not to the outputs: downstream keys hash every
        // output, and a trial that does not win must leave the stages that use the choice cached.
        let table = chosen.remove("trials").unwrap_or_default();
        eprintln!("trials (gap to retrain, lower is better):");
        for t in table.as_array().into_iter().flatten() {
            let score = match (&t["gap_to_retrain"], &t["excluded"]) {
                (Value::Number(g), _) => format!("{:.4}", g.as_f64().unwrap_or(f64::NAN)),
                (_, why) => format!("excluded: {}", why.as_str().unwrap_or("?")),
            };
            eprintln!("  {} {} {score}", t["stage"], t["values"]);
        }
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
            (
                "evaluate@lr=0.1,epochs=2".to_string(),
                metrics(0.8, 0.2, 0.75, 0.5),
            ),
            (
                "evaluate@lr=0.01,epochs=2".to_string(),
                metrics(0.89, 0.01, 0.84, 0.41),
            ),
            (
                "evaluate@lr=0.01,epochs=5".to_string(),
                metrics(0.91, 0.01, 0.86, 0.39),
            ),
            ("evaluate@lr=1,epochs=2".to_string(), diverged()),
        ];
        let reference = [("retrain_eval".to_string(), reference)];
        let out = choose(&trials, &reference, &["lr".into(), "epochs".into()]);
        assert_eq!(out["trial"], "evaluate@lr=0.01,epochs=2");
        assert_eq!(out["values"], json!({"lr": 0.01, "epochs": 2}));
        assert_eq!(out["ties"], json!(["evaluate@lr=0.01,epochs=5"]));
        assert_eq!(out["trials"][3]["excluded"], "diverged");
        assert!((out["gap_to_retrain"].as_f64().unwrap() - 0.01).abs() < 1e-12);
        let none = choose(&trials[3..], &reference, &["lr".into()]);
        assert_eq!(none["trial"], Value::Null);
    }

    #[test]
    fn a_setting_run_on_several_seeds_is_scored_by_its_mean_and_excluded_if_any_diverges() {
        let reference = metrics(0.9, 0.0, 0.85, 0.4);
        let trials = vec![
            // lr 0.1: the best run of all on seed 0, diverged on seed 1.
            ("e@lr=0.1,seed=0".to_string(), metrics(0.9, 0.0, 0.85, 0.4)),
            ("e@lr=0.1,seed=1".to_string(), diverged()),
            // lr 0.01: gaps 0.01 and 0.03, mean 0.02.
            (
                "e@lr=0.01,seed=0".to_string(),
                metrics(0.89, 0.01, 0.84, 0.41),
            ),
            (
                "e@lr=0.01,seed=1".to_string(),
                metrics(0.87, 0.03, 0.82, 0.43),
            ),
            // lr 0.001: gap 0.025 on both seeds.
            (
                "e@lr=0.001,seed=0".to_string(),
                metrics(0.875, 0.025, 0.825, 0.425),
            ),
            (
                "e@lr=0.001,seed=1".to_string(),
                metrics(0.875, 0.025, 0.825, 0.425),
            ),
        ];
        let reference = [("retrain_eval".to_string(), reference)];
        let out = choose(&trials, &reference, &["lr".into()]);
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
            ("r@seed=0".to_string(), metrics(0.9, 0.0, 0.85, 0.4)),
            ("r@seed=1".to_string(), metrics(0.8, 0.0, 0.75, 0.4)),
        ];
        let trials = vec![
            // Equal to retrain on each seed: gap 0 against its own seed's reference.
            ("e@lr=0.1,seed=0".to_string(), metrics(0.9, 0.0, 0.85, 0.4)),
            ("e@lr=0.1,seed=1".to_string(), metrics(0.8, 0.0, 0.75, 0.4)),
            // 0.01 from seed 0's reference on both seeds; 0.05 from seed 1's.
            (
                "e@lr=0.01,seed=0".to_string(),
                metrics(0.89, 0.01, 0.84, 0.41),
            ),
            (
                "e@lr=0.01,seed=1".to_string(),
                metrics(0.89, 0.01, 0.84, 0.41),
            ),
            ("e@lr=0.5,seed=2".to_string(), metrics(0.9, 0.0, 0.85, 0.4)),
        ];
        let out = choose(&trials, &references, &["lr".into()]);
        assert_eq!(out["values"], json!({"lr": 0.1}), "{out:?}");
        assert!(out["gap_to_retrain"].as_f64().unwrap().abs() < 1e-12);
        assert!((out["trials"][1]["gap_to_retrain"].as_f64().unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(
            out["trials"][2]["excluded"],
            "no reference evaluation has its bindings"
        );
        // Against seed 0's reference alone, lr 0.01 would have won.
        let out = choose(&trials[..4], &references[..1], &["lr".into()]);
        assert_eq!(out["values"], json!({"lr": 0.01}), "{out:?}");
    }
}
