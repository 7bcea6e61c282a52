//! The searches behind tuned rows: for every `select` stage, each trial's score by the same
//! criterion the stage uses (`select::choose`), recomputed from the cached evaluations so a partial
//! search shows the trials run so far.

use super::{Row, scenario_text};
use crate::kinds::is_evaluation;
use crate::kinds::select::{Evaluation, NO_CHOICE, choose, vars};
use camu_core::spec::Pipeline;
use serde::Serialize;
use serde_json::{Map, Value};

/// One trial of a search.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trial {
    pub stage: String,
    /// The searched variables' values, e.g. `{lr: 0.01, epochs: 5}`.
    pub values: Map<String, Value>,
    /// Gap to retrain on the selection's data, in percentage points; None when excluded.
    pub gap: Option<f64>,
    /// Why the trial cannot be chosen (diverged, a metric missing).
    pub excluded: Option<String>,
    /// The trials of this setting when it ran more than once (several seeds); their mean gap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
}

/// A `select` stage's trials and choice.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Search {
    /// The select stage (expanded name).
    pub select: String,
    pub dataset: String,
    pub scenario: String,
    pub method: String,
    pub vars: Vec<String>,
    pub trials: Vec<Trial>,
    /// Trial evaluations without a result yet.
    pub pending: Vec<String>,
    /// The chosen trial's stage and values (None: none can be chosen, or no reference yet).
    pub chosen: Option<String>,
    pub values: Option<Map<String, Value>>,
    /// Whether the select stage itself has a result for these trials; false while the search is
    /// still running, when `chosen` is what it would choose from the trials so far.
    pub decided: bool,
    /// Why nothing is chosen, when nothing is.
    pub note: Option<String>,
}

/// Metrics of a stage with a valid cached result.
type Cached<'a> = dyn Fn(&str) -> Option<Map<String, Value>> + 'a;

/// Every select stage of the pipeline with at least one evaluated trial.
pub fn searches(pipeline: &Pipeline, metrics: &Cached<'_>) -> Vec<Search> {
    let mut out = Vec::new();
    for stage in pipeline.stages.iter().filter(|s| s.kind == "select") {
        let Ok(vars) = vars(&stage.params) else {
            continue;
        };
        let reference = stage
            .params
            .get("reference")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut references = Vec::new();
        let mut trials = Vec::new();
        let mut pending = Vec::new();
        for n in &stage.needs {
            let Some(up) = pipeline.position(n).map(|j| &pipeline.stages[j]) else {
                continue;
            };
            let is_reference = n == reference || up.base == reference;
            match metrics(n) {
                Some(m) if is_reference => references.push(Evaluation::new(n, &up.bindings, m)),
                Some(m) if is_evaluation(&up.kind, &m) => {
                    trials.push(Evaluation::new(n, &up.bindings, m))
                }
                None if !is_reference && matches!(up.kind.as_str(), "evaluate" | "command") => {
                    pending.push(n.clone())
                }
                _ => {}
            }
        }
        let Some(first) = trials.first().map(|t| t.metrics.clone()) else {
            continue;
        };
        let text = |k: &str| {
            first
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        let mut search = Search {
            select: stage.name.clone(),
            dataset: text("dataset"),
            scenario: scenario_text(first.get("scenario")),
            method: text("method"),
            vars: vars.clone(),
            trials: Vec::new(),
            pending,
            chosen: None,
            values: None,
            // A select stage writes metrics, so it has some exactly when it has a valid result.
            decided: metrics(&stage.name).is_some(),
            note: None,
        };
        if references.is_empty() {
            search.note = Some(format!(
                "no gaps yet: the reference `{reference}` has no result"
            ));
            out.push(search);
            continue;
        }
        let c = choose(&trials, &references, &vars);
        for st in &c.settings {
            search.trials.push(Trial {
                stage: st.runs[0].clone(),
                values: st.values.clone(),
                gap: st.gap.as_ref().ok().map(|g| g * 100.0),
                excluded: st.gap.as_ref().err().map(|e| e.to_string()),
                runs: if st.runs.len() > 1 {
                    st.runs.clone()
                } else {
                    Vec::new()
                },
            });
        }
        search.chosen = c.trial().map(str::to_string);
        search.values = c.values().cloned();
        search.note = c.chosen.is_none().then(|| NO_CHOICE.to_string());
        out.push(search);
    }
    out
}

/// The values a tuned row ran with: its evaluate stage's model is an `unlearn` with
/// `from: SELECT`, and that select stage's choice is the search's.
pub fn tuned_values<'a>(
    pipeline: &Pipeline,
    searches: &'a [Search],
    row: &Row,
) -> Option<&'a Search> {
    let evaluate = pipeline.stage(&row.stage)?;
    let model = evaluate.params.get("model")?.as_str()?;
    let unlearn = evaluate
        .needs
        .iter()
        .filter_map(|n| pipeline.stage(n))
        .find(|s| s.name == model || s.base == model)?;
    let from = unlearn.params.get("from")?.as_str()?;
    unlearn
        .needs
        .iter()
        .filter_map(|n| pipeline.stage(n))
        .filter(|s| s.name == from || s.base == from)
        .find_map(|s| searches.iter().find(|x| x.select == s.name))
}

/// `lr 0.01, epochs 5`, in the order of `vars` (then any others).
pub fn values_text(values: &Map<String, Value>, vars: &[String]) -> String {
    let named = vars.iter().filter_map(|k| Some((k, values.get(k)?)));
    let others = values.iter().filter(|(k, _)| !vars.contains(k));
    named
        .chain(others)
        .map(|(k, v)| format!("{k} {}", v.to_string().trim_matches('"')))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One Markdown table per search of the group (`dataset`, `scenario`).
pub fn markdown(searches: &[Search], dataset: &str, scenario: &str) -> String {
    let mut out = String::new();
    for s in searches
        .iter()
        .filter(|s| s.dataset == dataset && s.scenario == scenario)
    {
        let chosen = match (&s.values, &s.note) {
            (Some(v), _) => format!("chosen: {}", values_text(v, &s.vars)),
            (None, Some(n)) => n.clone(),
            (None, None) => "nothing chosen".into(),
        };
        let state = if s.decided {
            String::new()
        } else {
            let done: usize = s.trials.iter().map(|t| t.runs.len().max(1)).sum();
            format!(
                " (provisional: {} of {} trials evaluated; `{}` has not run on them)",
                done,
                done + s.pending.len(),
                s.select
            )
        };
        out.push_str(&format!(
            "**Search for {}** (`{}`), gap to retrain on the validation part; {chosen}{state}\n\n|",
            s.method, s.select
        ));
        for v in &s.vars {
            out.push_str(&format!(" {v} |"));
        }
        out.push_str(" gap (points) |\n|");
        out.push_str(&"---:|".repeat(s.vars.len() + 1));
        out.push('\n');
        for t in &s.trials {
            out.push('|');
            for v in &s.vars {
                let x = t.values.get(v).map(|x| x.to_string()).unwrap_or("-".into());
                out.push_str(&format!(" {} |", x.trim_matches('"')));
            }
            let gap = match (&t.gap, &t.excluded) {
                (Some(g), _) if s.chosen.as_deref() == Some(t.stage.as_str()) => {
                    format!("**{g:.2}** (chosen)")
                }
                (Some(g), _) => format!("{g:.2}"),
                (None, Some(why)) => why.clone(),
                (None, None) => "-".into(),
            };
            out.push_str(&format!(" {gap} |\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_search_lists_each_trial_and_marks_the_choice() {
        let s = Search {
            select: "pick@method=salun".into(),
            dataset: "fashion_mnist".into(),
            scenario: "class 0".into(),
            method: "salun".into(),
            vars: vec!["lr".into(), "epochs".into()],
            trials: vec![
                Trial {
                    stage: "t@lr=0.01,epochs=2".into(),
                    values: json!({"lr": 0.01, "epochs": 2})
                        .as_object()
                        .unwrap()
                        .clone(),
                    gap: Some(1.5),
                    excluded: None,
                    runs: vec![],
                },
                Trial {
                    stage: "t@lr=0.1,epochs=2".into(),
                    values: json!({"lr": 0.1, "epochs": 2}).as_object().unwrap().clone(),
                    gap: None,
                    excluded: Some("diverged".into()),
                    runs: vec![],
                },
            ],
            pending: vec!["t@lr=0.1,epochs=5".into()],
            chosen: Some("t@lr=0.01,epochs=2".into()),
            values: json!({"lr": 0.01, "epochs": 2}).as_object().cloned(),
            decided: false,
            note: None,
        };
        let md = markdown(std::slice::from_ref(&s), "fashion_mnist", "class 0");
        assert_eq!(
            md,
            "**Search for salun** (`pick@method=salun`), gap to retrain on the validation part; \
             chosen: lr 0.01, epochs 2 (provisional: 2 of 3 trials evaluated; \
             `pick@method=salun` has not run on them)\n\n\
             | lr | epochs | gap (points) |\n|---:|---:|---:|\n\
             | 0.01 | 2 | **1.50** (chosen) |\n| 0.1 | 2 | diverged |\n\n"
        );
        assert_eq!(markdown(&[s], "fashion_mnist", "random 10%"), "");
    }
}
