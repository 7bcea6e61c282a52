//! Results tables from the evaluate stages of a pipeline (what exists, and what is missing).

use crate::engine::{Engine, EngineError};
use serde::Serialize;
use serde_json::{Map, Value};

/// One evaluated model.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub stage: String,
    pub metrics: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub rows: Vec<Row>,
    /// Evaluate stages without a result yet.
    pub missing: Vec<String>,
}

/// Collects the metrics of every evaluate stage that has a valid cache record.
pub fn collect(engine: &mut Engine<'_>) -> Result<Results, EngineError> {
    let statuses = engine.status()?;
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for st in statuses {
        let Some(stage) = engine.pipeline.stage(&st.stage) else {
            continue;
        };
        if stage.kind != "evaluate" {
            continue;
        }
        let record = st
            .key
            .as_ref()
            .filter(|_| st.state == "cached")
            .and_then(|k| engine.cache.record(k));
        match record
            .and_then(|r| r.metrics)
            .and_then(|m| m.as_object().cloned())
        {
            Some(metrics) => rows.push(Row {
                stage: st.stage.clone(),
                metrics,
            }),
            None => missing.push(st.stage.clone()),
        }
    }
    Ok(Results { rows, missing })
}

/// Columns of the table: (metric key, header).
const COLUMNS: &[(&str, &str)] = &[
    ("acc_remain_train", "RA"),
    ("acc_forget_train", "FA"),
    ("acc_test", "TA"),
    ("acc_test_remain", "TA remain"),
    ("acc_test_forget", "TA forget"),
    ("mia_camu", "MIA"),
    ("mia_loss", "MIA loss"),
    ("kl_to_retrain_forget", "KL(Df)"),
    ("unlearn_time_s", "time (s)"),
];

fn cell(v: Option<&Value>, key: &str) -> String {
    match v.and_then(Value::as_f64) {
        None => "-".into(),
        Some(x) if key == "unlearn_time_s" => format!("{x:.1}"),
        Some(x) if key.starts_with("kl") => format!("{x:.4}"),
        Some(x) => format!("{:.2}", x * 100.0),
    }
}

fn scenario_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(o)) => match o.get("scenario").and_then(Value::as_str) {
            Some("random") => format!(
                "random {}%",
                o.get("fraction").and_then(Value::as_f64).unwrap_or(0.0) * 100.0
            ),
            Some("class") => format!(
                "class {}",
                o.get("classes").map(|c| c.to_string()).unwrap_or_default()
            ),
            Some(other) => other.to_string(),
            None => "-".into(),
        },
        _ => "-".into(),
    }
}

/// A Markdown table: accuracies and MIA in percent, KL raw, time in seconds.
pub fn markdown(results: &Results) -> String {
    let mut out = String::from("| dataset | scenario | seed | method |");
    for (_, h) in COLUMNS {
        out.push_str(&format!(" {h} |"));
    }
    out.push_str("\n|---|---|---|---|");
    out.push_str(&"---:|".repeat(COLUMNS.len()));
    out.push('\n');
    for r in &results.rows {
        let m = &r.metrics;
        let s = |k: &str| {
            m.get(k)
                .map(|v| v.as_str().map(String::from).unwrap_or(v.to_string()))
                .unwrap_or("-".into())
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |",
            s("dataset"),
            scenario_text(m.get("scenario")),
            s("seed"),
            s("method")
        ));
        for (k, _) in COLUMNS {
            out.push_str(&format!(" {} |", cell(m.get(*k), k)));
        }
        out.push('\n');
    }
    if !results.missing.is_empty() {
        out.push_str(&format!(
            "\nnot yet computed: {}\n",
            results.missing.join(", ")
        ));
    }
    out
}
