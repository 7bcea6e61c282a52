//! The per-example audit in the report: per dataset and scenario, one row per method and number
//! of runs with F (and its bootstrap interval), the final score and U-LiRA, the epsilons' histogram
//! in F's bins, and the examples hardest to forget (their training-set indices).

use super::{Row, clean_label, scenario_text};
use crate::audit::{RankingStability, ranking_stability};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Resamples of the ranking bootstrap, and its seed (fixed: the report is reproducible).
const RESAMPLES: usize = 1000;
const SEED: u64 = 0;

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
    /// Examples whose epsilon reached the cap of 50.
    pub capped: u64,
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
        capped: m.get("epsilon_capped").and_then(Value::as_u64).unwrap_or(0),
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

/// Why an audit's `epsilons.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: an example without points in [0, 1]", path.display())]
    Bad { path: std::path::PathBuf },
}

/// An audit stage's per-example points, in its `epsilons.json` (in `dir`, its output).
pub fn points(dir: &Path) -> Result<Vec<f64>, PointsError> {
    let path = dir.join("epsilons.json");
    let text = std::fs::read(&path).map_err(|source| PointsError::Read {
        path: path.clone(),
        source,
    })?;
    let rows: Vec<Map<String, Value>> =
        serde_json::from_slice(&text).map_err(|source| PointsError::Parse {
            path: path.clone(),
            source,
        })?;
    rows.iter()
        .map(|r| {
            r.get("points")
                .and_then(Value::as_f64)
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| PointsError::Bad { path: path.clone() })
        })
        .collect()
}

/// The order of the methods by F among the audits of one dataset, scenario, number of runs and
/// set of retrained runs, with its paired bootstrap over the forget examples.
#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    pub dataset: String,
    pub scenario: String,
    pub runs: u64,
    /// The retrained runs' matrix stage all these audits compare against.
    pub retrained: String,
    #[serde(flatten)]
    pub stability: RankingStability,
}

/// Rankings of every group of audits with two methods or more. `points` holds each audit
/// stage's per-example points; an audit without them is left out of its group's ranking.
pub fn rankings(rows: &[Row], points: &BTreeMap<String, Vec<f64>>) -> Vec<Ranking> {
    type Group = (String, String, u64, String);
    let mut groups: BTreeMap<Group, Vec<(String, Vec<f64>)>> = BTreeMap::new();
    for row in rows {
        let (Some(a), Some(p)) = (of(row), points.get(&row.stage)) else {
            continue;
        };
        let retrained = row
            .metrics
            .get("retrained_stage")
            .and_then(Value::as_str)
            .map(clean_label)
            .unwrap_or_else(|| "-".into());
        let label = format!("{} ({})", a.method, a.unlearned);
        groups
            .entry((a.dataset, a.scenario, a.runs, retrained))
            .or_default()
            .push((label, p.clone()));
    }
    groups
        .into_iter()
        .filter_map(|((dataset, scenario, runs, retrained), methods)| {
            Some(Ranking {
                stability: ranking_stability(&methods, RESAMPLES, SEED)?,
                dataset,
                scenario,
                runs,
                retrained,
            })
        })
        .collect()
}

/// For the main table of a dataset and scenario: each method's audit with the most runs (ties:
/// the first unlearned stage by name).
pub fn beside<'a>(
    audits: &'a [Audit],
    dataset: &str,
    scenario: &str,
) -> BTreeMap<&'a str, &'a Audit> {
    let mut best: BTreeMap<&str, &Audit> = BTreeMap::new();
    for a in audits
        .iter()
        .filter(|a| a.dataset == dataset && a.scenario == scenario)
    {
        let e = best.entry(a.method.as_str()).or_insert(a);
        if (a.runs, std::cmp::Reverse(&a.unlearned)) > (e.runs, std::cmp::Reverse(&e.unlearned)) {
            *e = a;
        }
    }
    best
}

/// The F, final and U-LiRA cells of a main-table row ("-" where the method has no audit).
pub fn cells(a: Option<&Audit>) -> String {
    match a {
        None => " - | - | - |".into(),
        Some(a) => format!(
            " {} | {} | {} |",
            f3(a.forgetting_quality),
            f3(a.final_score),
            f3(a.ulira_accuracy)
        ),
    }
}

/// The Markdown lines of one ranking.
fn ranking_markdown(r: &Ranking) -> String {
    let s = &r.stability;
    let retrained = if r.retrained == "-" {
        String::new()
    } else {
        format!(" (retrained: {})", r.retrained)
    };
    let mut out = format!(
        "- {} runs a side{retrained}: {}; this whole order holds in {:.1}% of {} paired \
         resamples of the {} forget examples\n",
        r.runs,
        s.order
            .iter()
            .zip(&s.f)
            .map(|(m, f)| format!("{m} {f:.3}"))
            .collect::<Vec<_>>()
            .join(" > "),
        100.0 * s.whole,
        s.resamples,
        s.examples
    );
    for (m, ranks) in s.order.iter().zip(&s.ranks) {
        let shares: Vec<String> = ranks
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x > 0.0)
            .map(|(k, x)| format!("rank {}: {:.1}%", k + 1, 100.0 * x))
            .collect();
        out.push_str(&format!("  - {m}: {}\n", shares.join(", ")));
    }
    out
}

/// The Markdown section; empty when the pipeline has no audit results.
pub fn markdown(audits: &[Audit], rankings: &[Ranking]) -> String {
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
        let ranked: Vec<&Ranking> = rankings
            .iter()
            .filter(|r| (r.dataset.as_str(), r.scenario.as_str()) == (dataset, scenario))
            .collect();
        if !ranked.is_empty() {
            out.push_str("\nThe order of the methods by F, and how often each takes each rank when the forget examples are drawn again with replacement (the same draw for every method):\n\n");
            for r in ranked {
                out.push_str(&ranking_markdown(r));
            }
        }
        // The hardest examples at the most runs each method has.
        out.push_str("\nHardest to forget (training-set index: epsilon), at the most runs; examples at the cap of 50 are listed by index:\n\n");
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
            let capped = if a.capped > 0 {
                format!(" ({} of {} at the cap)", a.capped, a.examples)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "- {method} ({}, {} runs){capped}: {}\n",
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
        let md = markdown(&[a], &[]);
        assert!(md.contains("### fashion_mnist - class 0"), "{md}");
        assert!(
            md.contains("| 8 | 0.250 | 0.200-0.300 | 0.240 | 0.600 | 0.650 | 1.500 | 1 0 0 0 2 |"),
            "{md}"
        );
        assert!(md.contains("7: 50.00, 3: 50.00"), "{md}");
        // A method name cannot break the table.
        assert!(!md.contains("camu|x"), "{md}");
        assert!(markdown(&[], &[]).is_empty());
    }

    fn audit_row(method: &str, runs: u64, f: f64) -> Row {
        let m = json!({
            "dataset": "d", "method": method, "runs": runs, "unlearned_stage": "unlearn",
            "retrained_stage": "retrain", "scenario": {"scenario": "class", "classes": [0]},
            "forgetting_quality": f, "final_score": f, "ulira_accuracy": 0.5,
        });
        Row {
            stage: format!("audit@method={method},runs={runs}"),
            key: None,
            metrics: m.as_object().unwrap().clone(),
            tuned: None,
        }
    }

    #[test]
    fn rankings_compare_methods_at_one_number_of_runs_and_the_table_takes_the_most() {
        let rows = [
            audit_row("a", 4, 0.5),
            audit_row("b", 4, 0.25),
            audit_row("a", 8, 0.1),
            audit_row("b", 8, 0.2),
            // No points: left out of its ranking, which then has one method and is dropped.
            audit_row("c", 16, 0.9),
        ];
        let points: BTreeMap<String, Vec<f64>> = rows[..4]
            .iter()
            .map(|r| {
                let f = r.metrics["forgetting_quality"].as_f64().unwrap();
                // Half the examples score 2F, half 0: the mean is F.
                (
                    r.stage.clone(),
                    (0..100)
                        .map(|i| if i % 2 == 0 { 2.0 * f } else { 0.0 })
                        .collect(),
                )
            })
            .collect();
        let r = rankings(&rows, &points);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].runs, r[1].runs), (4, 8));
        assert_eq!(r[0].stability.order, ["a (unlearn)", "b (unlearn)"]);
        assert_eq!(r[1].stability.order, ["b (unlearn)", "a (unlearn)"]);
        assert!((r[0].stability.f[0] - 0.5).abs() < 1e-12);
        let audits: Vec<Audit> = rows.iter().filter_map(of).collect();
        let best = beside(&audits, "d", "class 0");
        assert_eq!(best["a"].runs, 8);
        assert_eq!(best["c"].runs, 16);
        assert!(beside(&audits, "d", "random 10%").is_empty());
        assert_eq!(cells(Some(best["b"])), " 0.200 | 0.200 | 0.500 |");
        assert_eq!(cells(None), " - | - | - |");
        let md = markdown(&audits, &r);
        assert!(
            md.contains(
                "- 8 runs a side (retrained: retrain): b (unlearn) 0.200 > a (unlearn) 0.100;"
            ),
            "{md}"
        );
    }
}
