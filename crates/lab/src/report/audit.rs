//! The per-example audit in the report: per dataset and scenario, one row per method and number
//! of runs with F (and its bootstrap interval), the final score and U-LiRA, the epsilons' histogram
//! in F's bins, and the examples hardest to forget (their training-set indices).

use super::{Row, clean_label, scenario_text};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One `audit` stage's result.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub stage: String,
    pub key: Option<String>,
    pub dataset: String,
    pub scenario: String,
    pub method: String,
    /// The matrix stage of the unlearned runs (two audits of one method differ by it).
    pub unlearned: String,
    pub runs: u64,
    pub forgetting_quality: Option<f64>,
    pub ci95: Option<(f64, f64)>,
    pub final_score: Option<f64>,
    pub ulira_accuracy: Option<f64>,
    pub ulira_auc: Option<f64>,
    pub epsilon_mean: Option<f64>,
    pub examples: u64,
    pub bins: Vec<u64>,
    pub hardest: Vec<(i64, f64)>,
}

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// Reads an audit record; None where it lacks what every audit writes.
pub fn of(row: &Row) -> Option<Audit> {
    let m = &row.metrics;
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(clean_label)
            .unwrap_or_else(|| "-".into())
    };
    let ci = m.get("forgetting_quality_ci95").and_then(Value::as_array);
    Some(Audit {
        stage: row.stage.clone(),
        key: row.key.clone(),
        dataset: text("dataset"),
        scenario: scenario_text(m.get("scenario")),
        method: text("method"),
        unlearned: text("unlearned_stage"),
        runs: m.get("runs")?.as_u64()?,
        forgetting_quality: num(m, "forgetting_quality").filter(|f| (0.0..=1.0).contains(f)),
        ci95: ci.and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))),
        final_score: num(m, "final_score"),
        ulira_accuracy: num(m, "ulira_accuracy"),
        ulira_auc: num(m, "ulira_auc"),
        epsilon_mean: num(m, "epsilon_mean"),
        examples: m.get("examples").and_then(Value::as_u64).unwrap_or(0),
        bins: m
            .get("epsilon_bins")
            .and_then(|b| b.get("counts"))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default(),
        hardest: m
            .get("hardest")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|h| Some((h.get("index")?.as_i64()?, h.get("epsilon")?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn f3(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

/// The Markdown section; empty when the pipeline has no audit results.
pub fn markdown(audits: &[Audit]) -> String {
    if audits.is_empty() {
        return String::new();
    }
    let mut groups: BTreeMap<(&str, &str), Vec<&Audit>> = BTreeMap::new();
    for a in audits {
        groups.entry((&a.dataset, &a.scenario)).or_default().push(a);
    }
    let mut out = String::from(
        "## Per-example audit\n\nF: the NeurIPS 2023 unlearning competition's forgetting quality (1 is best; \
         95% bootstrap interval over the forget examples), final: F x RA_u/RA_r x TA_u/TA_r, U-LiRA: \
         the per-example likelihood-ratio attack's balanced accuracy and AUC (0.5: no better than a coin). \
         Histogram: forget examples per epsilon bin of width 0.5 (the last bin: beyond the scored ones).\n\n",
    );
    for ((dataset, scenario), mut rows) in groups {
        rows.sort_by(|a, b| {
            (&a.method, &a.unlearned, a.runs).cmp(&(&b.method, &b.unlearned, b.runs))
        });
        out.push_str(&format!("### {dataset} - {scenario}\n\n"));
        out.push_str("| method (runs of) | runs | F | F 95% | final | U-LiRA acc | U-LiRA AUC | mean epsilon | histogram |\n");
        out.push_str("|---|---:|---:|---|---:|---:|---:|---:|---|\n");
        for a in &rows {
            let ci = a.ci95.map_or("-".into(), |(l, h)| format!("{l:.3}-{h:.3}"));
            let bins: Vec<String> = a.bins.iter().map(u64::to_string).collect();
            out.push_str(&format!(
                "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                a.method,
                a.unlearned,
                a.runs,
                f3(a.forgetting_quality),
                ci,
                f3(a.final_score),
                f3(a.ulira_accuracy),
                f3(a.ulira_auc),
                f3(a.epsilon_mean),
                bins.join(" ")
            ));
        }
        // The hardest examples at the most runs each method has.
        out.push_str("\nHardest to forget (training-set index: epsilon), at the most runs:\n\n");
        let mut best: BTreeMap<(&str, &str), &Audit> = BTreeMap::new();
        for a in &rows {
            let e = best.entry((&a.method, &a.unlearned)).or_insert(a);
            if a.runs > e.runs {
                *e = a;
            }
        }
        for ((method, _), a) in best {
            let list: Vec<String> = a
                .hardest
                .iter()
                .map(|(i, e)| format!("{i}: {e:.2}"))
                .collect();
            out.push_str(&format!(
                "- {method} ({}, {} runs): {}\n",
                a.unlearned,
                a.runs,
                list.join(", ")
            ));
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
    fn an_audit_record_becomes_a_table_row_with_its_histogram_and_hardest_examples() {
        let m = json!({
            "dataset": "fashion_mnist", "method": "camu|x\nbad", "runs": 8, "unlearned_stage": "unlearn",
            "scenario": {"scenario": "class", "classes": [0]},
            "forgetting_quality": 0.25, "forgetting_quality_ci95": [0.2, 0.3],
            "final_score": 0.24, "ulira_accuracy": 0.6, "ulira_auc": 0.65, "epsilon_mean": 1.5,
            "examples": 3, "epsilon_bins": {"counts": [1, 0, 0, 0, 2]},
            "hardest": [{"index": 7, "epsilon": 50.0}, {"index": 3, "epsilon": 50.0}],
        });
        let row = Row {
            stage: "audit@m=camu,runs=8".into(),
            key: Some("k".into()),
            metrics: m.as_object().unwrap().clone(),
            tuned: None,
        };
        let a = of(&row).unwrap();
        let md = markdown(&[a]);
        assert!(md.contains("### fashion_mnist - class 0"), "{md}");
        assert!(
            md.contains("| 8 | 0.250 | 0.200-0.300 | 0.240 | 0.600 | 0.650 | 1.500 | 1 0 0 0 2 |"),
            "{md}"
        );
        assert!(md.contains("7: 50.00, 3: 50.00"), "{md}");
        // A method name cannot break the table.
        assert!(!md.contains("camu|x"), "{md}");
        assert!(markdown(&[]).is_empty());
    }
}
