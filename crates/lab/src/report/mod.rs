//! Comparison of methods the way a paper shows it: per dataset and scenario, methods x metrics as
//! mean +- population std over seeds, retrain as the reference row, gap to retrain and speed-up
//! over retrain; as Markdown, CSV, JSON and plots. Works on partial results and says what is
//! missing.

pub mod audit;
pub mod html;
mod plots;
pub mod search;

use camu_core::engine::{Engine, EngineError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One evaluated model (the metrics of one evaluate stage).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub stage: String,
    /// The cache key of the evaluate record the metrics come from.
    pub key: Option<String>,
    pub metrics: Map<String, Value>,
    /// For a run with values a `select` stage chose: that stage and the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuned: Option<Tuned>,
}

/// The choice a tuned run used.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tuned {
    pub select: String,
    pub vars: Vec<String>,
    pub values: Map<String, Value>,
}

/// Rows of a pipeline, the evaluate stages without a result yet, and the searches.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub rows: Vec<Row>,
    pub missing: Vec<String>,
    /// Values left out as untrustworthy ([`sanitise`]), by stage.
    pub rejected: Vec<String>,
    pub searches: Vec<search::Search>,
    /// The `audit` stages' results.
    pub audits: Vec<Row>,
    /// Each audit stage's per-example points (`epsilons.json`), for the ranking bootstrap.
    #[serde(skip)]
    pub audit_points: BTreeMap<String, Vec<f64>>,
    /// Every stage with a cached result, as it ran.
    pub timeline: Vec<html::Span>,
}

/// Collects the metrics of every evaluate stage that has a valid cache record, except those
/// scored on a split's validation part (`on: validation`), which go into the searches of the
/// `select` stages that use them.
pub fn collect(engine: &mut Engine<'_>) -> Result<Results, EngineError> {
    let statuses = engine.status()?;
    let cached: BTreeMap<&str, &str> = statuses
        .iter()
        .filter(|s| s.state == "cached")
        .filter_map(|s| Some((s.stage.as_str(), s.key.as_deref()?)))
        .collect();
    let metrics_of = |stage: &str| {
        let key = cached.get(stage)?;
        engine.cache.record(key)?.metrics?.as_object().cloned()
    };
    let searches = search::searches(engine.pipeline, &metrics_of);
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    let mut rejected = Vec::new();
    let mut audits = Vec::new();
    let mut audit_points = BTreeMap::new();
    let mut timeline = Vec::new();
    for st in &statuses {
        let Some(stage) = engine.pipeline.stage(&st.stage) else {
            continue;
        };
        // Each stage's record is read once: for the timeline, and for an evaluation's or an
        // audit's metrics.
        let record = cached
            .get(st.stage.as_str())
            .and_then(|k| engine.cache.record(k));
        if let Some(r) = &record {
            timeline.push(html::Span {
                stage: st.stage.clone(),
                kind: stage.kind.clone(),
                method: stage
                    .params
                    .get("method")
                    .and_then(Value::as_str)
                    .map(clean_label),
                started_at: r.started_at,
                duration_s: r.duration_s,
                threads: r.threads,
                gpu_share: r.gpu_share,
                device: r.device.clone(),
                attempts: r.attempts,
            });
        }
        let metrics = record
            .and_then(|r| r.metrics)
            .and_then(|m| m.as_object().cloned());
        if stage.kind == "audit" {
            match metrics {
                Some(mut metrics) => {
                    for why in sanitise(&mut metrics) {
                        rejected.push(format!("{}: {why}", st.stage));
                    }
                    let key = st.key.as_deref().unwrap_or_default();
                    match audit::points(&engine.cache.out_dir(key)) {
                        Ok(p) => {
                            audit_points.insert(st.stage.clone(), p);
                        }
                        Err(why) => rejected.push(format!("{}: {why}", st.stage)),
                    }
                    audits.push(Row {
                        stage: st.stage.clone(),
                        key: st.key.clone(),
                        metrics,
                        tuned: None,
                    });
                }
                None => missing.push(st.stage.clone()),
            }
            continue;
        }
        // Evaluations on the validation part serve `select`, not the tables.
        if stage.kind != "evaluate"
            || stage.params.get("on").and_then(|v| v.as_str()) == Some("validation")
        {
            continue;
        }
        match metrics {
            Some(mut metrics) => {
                for why in sanitise(&mut metrics) {
                    rejected.push(format!("{}: {why}", st.stage));
                }
                let mut row = Row {
                    stage: st.stage.clone(),
                    key: st.key.clone(),
                    metrics,
                    tuned: None,
                };
                if row.metrics.contains_key("selected") {
                    row.tuned =
                        search::tuned_values(engine.pipeline, &searches, &row).and_then(|s| {
                            Some(Tuned {
                                select: s.select.clone(),
                                vars: s.vars.clone(),
                                values: s.values.clone()?,
                            })
                        });
                }
                rows.push(row)
            }
            None => missing.push(st.stage.clone()),
        }
    }
    Ok(Results {
        rows,
        missing,
        rejected,
        searches,
        audits,
        audit_points,
        timeline,
    })
}

/// The largest value a finite non-percentage metric may take before the report distrusts it:
/// far beyond any real divergence, time or epoch count, and small enough for plot axes.
const LARGEST: f64 = 1e9;

/// Makes a record's metrics safe to tabulate and plot: a reported metric that is not a finite
/// number in its unit's range (a fraction in [0, 1]; otherwise in [0, 1e9]) is dropped, as is a
/// relearning curve (losses) with a point outside [0, 1e9]; the texts used as labels lose control characters and `|`,
/// and are cut to 80 characters. Returns what was dropped or changed.
pub fn sanitise(m: &mut Map<String, Value>) -> Vec<String> {
    let mut why = Vec::new();
    let in_range = |unit: Unit, x: f64| match unit {
        Unit::Percent => (0.0..=1.0).contains(&x),
        _ => (0.0..=LARGEST).contains(&x),
    };
    for metric in crate::metrics::METRICS {
        let Some(v) = m.get(metric.key) else { continue };
        if v.is_null() {
            continue;
        }
        if !v
            .as_f64()
            .is_some_and(|x| x.is_finite() && in_range(metric.unit, x))
        {
            why.push(format!("`{}` = {v} is out of range; left out", metric.key));
            m.remove(metric.key);
        }
    }
    // The relearning curve is a loss per epoch: finite and not negative.
    if let Some(curve) = m.get("relearn_curve") {
        let ok = curve.as_array().is_some_and(|a| {
            a.iter()
                .all(|p| p.as_f64().is_some_and(|x| (0.0..=LARGEST).contains(&x)))
        });
        if !ok {
            why.push("`relearn_curve` has a point that is not a loss in [0, 1e9]; left out".into());
            m.remove("relearn_curve");
        }
    }
    for key in ["method", "dataset"] {
        if let Some(Value::String(s)) = m.get(key) {
            let clean = clean_label(s);
            if clean != *s {
                why.push(format!("`{key}` {s:?} shown as {clean:?}"));
                m.insert(key.into(), Value::String(clean));
            }
        }
    }
    why
}

/// A text fit for a table cell and a plot label: no control characters, no `|`, at most 80
/// characters.
pub fn clean_label(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '|')
        .take(80)
        .collect()
}

use crate::metrics::{Metric, Unit, gap_to_retrain, reported};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Population standard deviation (ddof 0), as the reference reports.
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Some(Stat {
            mean,
            std: var.sqrt(),
            n: v.len(),
        })
    }
}

/// Where one seed's numbers of a method came from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub seed: Option<i64>,
    /// The evaluate stage and the key of its cache record (`records/KEY.json`).
    pub stage: String,
    pub key: Option<String>,
    /// The evaluate record's own account of its inputs (model, split and method versions).
    pub provenance: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    pub method: String,
    pub seeds: Vec<i64>,
    /// Seeds whose model had non-finite outputs: their output metrics are null and the method is
    /// left out of the gap and speed-up ranking.
    pub diverged_seeds: Vec<i64>,
    /// One entry per seed's evaluate record.
    pub sources: Vec<Source>,
    /// (seed, epoch) of runs the divergence guard stopped early, on the last finite weights.
    pub stopped: Vec<(i64, i64)>,
    pub metrics: BTreeMap<String, Stat>,
    /// Mean |method - retrain| over RA, FA, TA and MIA, in percentage points.
    pub gap_to_retrain: Option<f64>,
    /// Retrain's time / this method's time.
    pub speedup: Option<f64>,
    /// Df loss per relearn epoch, averaged over seeds (shortest length).
    pub relearn_curve: Option<Vec<f64>>,
    /// The choices tuned runs used (one, unless seeds used different selections).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuned: Vec<Tuned>,
    /// Per `acc_*_per_class` key, each class's accuracy averaged over the seeds that recorded
    /// it (None: no seed has samples of that class there).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_class: BTreeMap<String, Vec<Option<f64>>>,
    /// Each layer's linear CKA to retrain (`cka_to_retrain`), in the model's layer order,
    /// averaged over the seeds that recorded it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cka: Vec<(String, Option<f64>)>,
}

/// Each layer's mean CKA over the runs that recorded `cka_to_retrain` (nulls left out).
fn cka_means(runs: &[&Map<String, Value>]) -> Vec<(String, Option<f64>)> {
    let mut layers: Vec<(String, Vec<f64>)> = Vec::new();
    for entry in runs
        .iter()
        .filter_map(|m| m.get("cka_to_retrain").and_then(Value::as_array))
        .flatten()
    {
        let Some(layer) = entry.get("layer").and_then(Value::as_str) else {
            continue;
        };
        let i = match layers.iter().position(|l| l.0 == layer) {
            Some(i) => i,
            None => {
                layers.push((layer.to_string(), Vec::new()));
                layers.len() - 1
            }
        };
        if let Some(v) = entry.get("cka").and_then(Value::as_f64) {
            layers[i].1.push(v);
        }
    }
    layers
        .into_iter()
        .map(|(l, v)| {
            let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            (l, mean)
        })
        .collect()
}

/// Each class's mean over the runs' per-class lists (nulls left out).
fn per_class_means(runs: &[&Map<String, Value>], key: &str) -> Option<Vec<Option<f64>>> {
    let lists: Vec<&Vec<Value>> = runs
        .iter()
        .filter_map(|m| m.get(key).and_then(Value::as_array))
        .collect();
    let classes = lists.iter().map(|l| l.len()).max()?;
    Some(
        (0..classes)
            .map(|c| {
                let v: Vec<f64> = lists
                    .iter()
                    .filter_map(|l| l.get(c).and_then(Value::as_f64))
                    .filter(|x| (0.0..=1.0).contains(x))
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect(),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub dataset: String,
    pub scenario: String,
    /// Test samples the metrics are on when a split holds a validation part out of the test set
    /// (None: the whole test set). Results on different test data are separate groups.
    pub test_part: Option<i64>,
    pub methods: Vec<MethodSummary>,
    /// Notes on what is incomplete (fewer seeds than retrain, no retrain row).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub groups: Vec<Group>,
    pub missing: Vec<String>,
    /// Values left out of the tables as untrustworthy, by stage.
    pub rejected: Vec<String>,
    /// Every `select` stage's trials and choice.
    pub searches: Vec<search::Search>,
    /// Every `audit` stage's result.
    pub audits: Vec<audit::Audit>,
    /// How stable the audits' order of methods is, per dataset, scenario and number of runs.
    pub audit_rankings: Vec<audit::Ranking>,
    /// Every stage with a cached result, as it ran (the report page's timeline).
    pub timeline: Vec<html::Span>,
}

/// "random 10%", "class 0", "per-class {...}".
pub fn scenario_text(v: Option<&Value>) -> String {
    let Some(Value::Object(o)) = v else {
        return "-".into();
    };
    match o.get("scenario").and_then(Value::as_str) {
        Some("random") => format!(
            "random {}%",
            o.get("fraction").and_then(Value::as_f64).unwrap_or(0.0) * 100.0
        ),
        Some("class") => {
            let cs: Vec<String> = o
                .get("classes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|c| c.to_string()).collect())
                .unwrap_or_default();
            format!("class {}", cs.join(","))
        }
        Some("per_class") => format!(
            "per-class {}",
            o.get("proportions")
                .map(|p| p.to_string())
                .unwrap_or_default()
        ),
        _ => "-".into(),
    }
}

fn method_rank(m: &str) -> (u8, String) {
    match m {
        "retrain" => (0, String::new()),
        "camu" => (1, String::new()),
        "original" => (3, String::new()),
        other => (2, other.to_string()),
    }
}

/// Each seed's evaluated row, by method.
type RunsByMethod<'a> = BTreeMap<String, Vec<&'a Row>>;

fn diverged(m: &Map<String, Value>) -> bool {
    m.get("diverged") == Some(&Value::Bool(true))
}

/// Groups rows by dataset and scenario and aggregates over seeds.
pub fn aggregate(results: &Results) -> Comparison {
    let text = |m: &Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("-").to_string()
    };
    let mut groups: BTreeMap<(String, String, Option<i64>), RunsByMethod<'_>> = BTreeMap::new();
    for r in &results.rows {
        let m = &r.metrics;
        let test_part = m
            .get("test_set")
            .filter(|t| *t == "test")
            .and_then(|_| m.get("n_test")?.as_i64());
        groups
            .entry((
                text(m, "dataset"),
                scenario_text(m.get("scenario")),
                test_part,
            ))
            .or_default()
            .entry(text(m, "method"))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((dataset, scenario, test_part), by_method) in groups {
        let mut methods: Vec<MethodSummary> = by_method
            .iter()
            .map(|(method, rows)| {
                let runs: Vec<&Map<String, Value>> = rows.iter().map(|r| &r.metrics).collect();
                let mut metrics = BTreeMap::new();
                for k in reported().map(|m| m.key) {
                    let vals: Vec<f64> = runs
                        .iter()
                        .filter_map(|m| m.get(k).and_then(Value::as_f64))
                        .collect();
                    if let Some(s) = Stat::of(&vals) {
                        metrics.insert(k.to_string(), s);
                    }
                }
                let curves: Vec<Vec<f64>> = runs
                    .iter()
                    .filter_map(|m| m.get("relearn_curve").and_then(Value::as_array))
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .collect();
                let relearn_curve = (!curves.is_empty()).then(|| {
                    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
                    (0..len)
                        .map(|i| curves.iter().map(|c| c[i]).sum::<f64>() / curves.len() as f64)
                        .collect()
                });
                let mut seeds: Vec<i64> = runs
                    .iter()
                    .filter_map(|m| m.get("seed").and_then(Value::as_i64))
                    .collect();
                seeds.sort_unstable();
                let mut diverged_seeds: Vec<i64> = runs
                    .iter()
                    .filter(|m| diverged(m))
                    .filter_map(|m| m.get("seed").and_then(Value::as_i64))
                    .collect();
                diverged_seeds.sort_unstable();
                let mut sources: Vec<Source> = rows
                    .iter()
                    .map(|r| Source {
                        seed: r.metrics.get("seed").and_then(Value::as_i64),
                        stage: r.stage.clone(),
                        key: r.key.clone(),
                        provenance: r.metrics.get("provenance").cloned(),
                    })
                    .collect();
                sources.sort_by_key(|s| s.seed);
                let mut stopped: Vec<(i64, i64)> = runs
                    .iter()
                    .filter_map(|m| {
                        Some((
                            m.get("seed").and_then(Value::as_i64)?,
                            m.get("stopped_at_epoch").and_then(Value::as_i64)?,
                        ))
                    })
                    .collect();
                stopped.sort_unstable();
                let mut tuned: Vec<Tuned> = Vec::new();
                for t in rows.iter().filter_map(|r| r.tuned.as_ref()) {
                    if !tuned.contains(t) {
                        tuned.push(t.clone());
                    }
                }
                let per_class = crate::metrics::PER_CLASS
                    .iter()
                    .filter_map(|(k, _)| Some((k.to_string(), per_class_means(&runs, k)?)))
                    .collect();
                MethodSummary {
                    per_class,
                    cka: cka_means(&runs),
                    method: method.clone(),
                    seeds,
                    diverged_seeds,
                    sources,
                    stopped,
                    metrics,
                    gap_to_retrain: None,
                    speedup: None,
                    relearn_curve,
                    tuned,
                }
            })
            .collect();
        methods.sort_by_key(|m| method_rank(&m.method));
        let mut notes = Vec::new();
        for m in &methods {
            if !m.stopped.is_empty() {
                let at: Vec<String> = m
                    .stopped
                    .iter()
                    .map(|(s, e)| format!("seed {s} at epoch {e}"))
                    .collect();
                notes.push(format!(
                    "{}: the divergence guard stopped the run ({}); the model is its last finite weights",
                    m.method,
                    at.join(", ")
                ));
            }
        }
        let retrain = methods.iter().find(|m| m.method == "retrain").cloned();
        match &retrain {
            None => {
                notes.push("no retrain results yet: gaps and speed-ups cannot be computed".into())
            }
            Some(r) => {
                for m in methods.iter_mut() {
                    if !m.diverged_seeds.is_empty() {
                        let seeds: Vec<String> =
                            m.diverged_seeds.iter().map(|s| s.to_string()).collect();
                        let mut note = format!(
                            "{}: diverged (non-finite outputs) in seed {}; left out of the gap and speed-up ranking",
                            m.method,
                            seeds.join(", ")
                        );
                        if m.diverged_seeds.len() < m.seeds.len() {
                            note.push_str("; its other cells average the remaining seeds");
                        }
                        notes.push(note);
                        continue;
                    }
                    let mean = |s: &MethodSummary, k: &str| s.metrics.get(k).map(|x| x.mean);
                    match gap_to_retrain(|k| mean(m, k), |k| mean(r, k)) {
                        Ok(g) => m.gap_to_retrain = Some(g * 100.0),
                        Err(why) => notes.push(format!("{}: no gap to retrain ({why})", m.method)),
                    }
                    let t = |s: &MethodSummary| s.metrics.get("unlearn_time_s").map(|x| x.mean);
                    if let (Some(rt), Some(mt)) = (t(r), t(m))
                        && mt > 0.0
                    {
                        m.speedup = Some(rt / mt);
                    }
                    if m.seeds.len() < r.seeds.len() {
                        notes.push(format!(
                            "{}: {} of {} seeds",
                            m.method,
                            m.seeds.len(),
                            r.seeds.len()
                        ));
                    }
                }
            }
        }
        out.push(Group {
            dataset,
            scenario,
            test_part,
            methods,
            notes,
        });
    }
    Comparison {
        groups: out,
        missing: results.missing.clone(),
        rejected: results.rejected.clone(),
        searches: results.searches.clone(),
        audit_rankings: audit::rankings(&results.audits, &results.audit_points),
        timeline: results.timeline.clone(),
        audits: results.audits.iter().filter_map(audit::of).collect(),
    }
}

fn fmt_stat(s: Option<&Stat>, metric: &Metric) -> String {
    match s {
        None => "-".into(),
        Some(s) => {
            let (m, d) = if metric.unit == Unit::Percent {
                (s.mean * 100.0, s.std * 100.0)
            } else {
                (s.mean, s.std)
            };
            let prec = if metric.unit == Unit::Distance { 4 } else { 2 };
            if s.n > 1 {
                format!("{m:.prec$} ± {d:.prec$}")
            } else {
                format!("{m:.prec$}")
            }
        }
    }
}

/// Columns shown in a group's table: those with at least one value.
fn shown(g: &Group) -> Vec<&'static Metric> {
    reported()
        .filter(|x| g.methods.iter().any(|m| m.metrics.contains_key(x.key)))
        .collect()
}

/// Paper-style Markdown: one table per dataset and scenario.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    for (i, g) in c.groups.iter().enumerate() {
        let seeds: Vec<String> = g
            .methods
            .iter()
            .flat_map(|m| m.seeds.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        let test = match g.test_part {
            Some(n) => {
                format!("; on {n} test samples, the rest of the test set held out for selection")
            }
            None => String::new(),
        };
        // Several models per seed (runs of a matrix over one split): say what a cell averages.
        let most = g
            .methods
            .iter()
            .map(|m| {
                let distinct: std::collections::BTreeSet<_> = m.seeds.iter().collect();
                m.sources.len().div_ceil(distinct.len().max(1))
            })
            .max()
            .unwrap_or(1);
        let per_seed = if most > 1 {
            format!("; up to {most} evaluated models per seed, each cell their mean ± std")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "### {} - {} (seeds: {}{per_seed}{test})\n\n",
            g.dataset,
            g.scenario,
            seeds.join(", ")
        ));
        let cols = shown(g);
        let audited = audit::beside(&c.audits, &g.dataset, &g.scenario);
        out.push_str("| method |");
        for c in &cols {
            out.push_str(&format!(" {} |", c.header));
        }
        out.push_str(" speed-up | gap to retrain |");
        if !audited.is_empty() {
            out.push_str(" F | final | U-LiRA acc |");
        }
        out.push_str("\n|---|");
        let extra = if audited.is_empty() { 0 } else { 3 };
        out.push_str(&"---:|".repeat(cols.len() + 2 + extra));
        out.push('\n');
        for m in &g.methods {
            let name = if m.method == "retrain" {
                "retrain (reference)".to_string()
            } else if m.tuned.is_empty() {
                m.method.clone()
            } else {
                let values: Vec<String> = m
                    .tuned
                    .iter()
                    .map(|t| search::values_text(&t.values, &t.vars))
                    .collect();
                format!("{}: {}", m.method, values.join(" / "))
            };
            out.push_str(&format!("| {name} |"));
            for c in &cols {
                let cell = match m.metrics.get(c.key) {
                    None if !m.diverged_seeds.is_empty() && c.from_outputs => {
                        "diverged".to_string()
                    }
                    s => fmt_stat(s, c),
                };
                out.push_str(&format!(" {cell} |"));
            }
            let sp = m.speedup.map(|s| format!("{s:.2}x")).unwrap_or("-".into());
            let gap = m
                .gap_to_retrain
                .map(|s| format!("{s:.2}"))
                .unwrap_or("-".into());
            out.push_str(&format!(" {sp} | {gap} |"));
            if !audited.is_empty() {
                out.push_str(&audit::cells(audited.get(m.method.as_str()).copied()));
            }
            out.push('\n');
        }
        if let Some(runs) = audited.values().map(|a| a.runs).max() {
            out.push_str(&format!(
                "\nF, final and U-LiRA acc: the per-example audit of each method's own runs (the \
                 audit with the most runs, up to {runs} a side; see \"Per-example audit\").\n"
            ));
        }
        if !g.notes.is_empty() {
            out.push('\n');
            for n in &g.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out.push('\n');
        // The searches follow the last table of their dataset and scenario (the tuned rows').
        let later = c.groups[i + 1..]
            .iter()
            .any(|h| (&h.dataset, &h.scenario) == (&g.dataset, &g.scenario));
        if !later {
            out.push_str(&search::markdown(&c.searches, &g.dataset, &g.scenario));
        }
    }
    // Searches whose final runs have no result yet.
    let mut seen = std::collections::BTreeSet::new();
    for s in &c.searches {
        let group = (s.dataset.as_str(), s.scenario.as_str());
        if !c
            .groups
            .iter()
            .any(|g| (g.dataset.as_str(), g.scenario.as_str()) == group)
            && seen.insert(group)
        {
            out.push_str(&format!(
                "### {} - {} (searches; no final results yet)\n\n",
                s.dataset, s.scenario
            ));
            out.push_str(&search::markdown(&c.searches, &s.dataset, &s.scenario));
        }
    }
    out.push_str("Accuracies and MIA in percent, mean ± population std over seeds; gap to retrain in percentage points.\n");
    let sources: Vec<String> = c
        .groups
        .iter()
        .flat_map(|g| {
            g.methods.iter().map(move |m| {
                let runs: Vec<String> = m
                    .sources
                    .iter()
                    .map(|s| {
                        let seed = s.seed.map(|x| x.to_string()).unwrap_or("-".into());
                        let key = s.key.as_deref().unwrap_or("-");
                        format!("s{seed} `{}`", &key[..key.len().min(12)])
                    })
                    .collect();
                format!("{} / {}: {}", scenario_label(g), m.method, runs.join(", "))
            })
        })
        .collect();
    if !sources.is_empty() {
        out.push_str(&format!(
            "\nSources (evaluate record keys, `cache/records/KEY.json`; full keys and each record's inputs in comparison.json): {}.\n",
            sources.join("; ")
        ));
    }
    // Methods written in Python: the script each row ran, by content hash.
    let mut scripts = std::collections::BTreeSet::new();
    for m in c.groups.iter().flat_map(|g| &g.methods) {
        for s in &m.sources {
            let model = s.provenance.as_ref().map(|p| &p["model"]);
            if let Some(src) = model.and_then(|m| m.get("source")) {
                let path = src["python"].as_str().unwrap_or("?");
                let hash = src["blake3"].as_str().unwrap_or("-");
                let hyper = match model.and_then(|m| m.get("hyperparameters")) {
                    Some(Value::Object(h)) if !h.is_empty() => {
                        let kv: Vec<String> = h.iter().map(|(k, v)| format!("{k} {v}")).collect();
                        format!("; {}", kv.join(", "))
                    }
                    _ => String::new(),
                };
                scripts.insert(format!(
                    "{}: `{path}` (blake3 `{}`{hyper})",
                    m.method,
                    &hash[..hash.len().min(12)]
                ));
            }
        }
    }
    if !scripts.is_empty() {
        out.push_str(&format!(
            "\nMethods written in Python: {}.\n",
            scripts.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    out.push_str(&audit::markdown(&c.audits, &c.audit_rankings));
    if !c.rejected.is_empty() {
        out.push_str(&format!(
            "\nleft out as invalid ({}): {}\n",
            c.rejected.len(),
            c.rejected.join("; ")
        ));
    }
    if !c.missing.is_empty() {
        out.push_str(&format!(
            "\nnot yet computed ({}): {}\n",
            c.missing.len(),
            c.missing.join(", ")
        ));
    }
    out
}

/// Long-format CSV: one row per dataset, scenario, method and metric.
pub fn csv(c: &Comparison) -> String {
    let mut out = String::from("dataset,scenario,method,metric,mean,std,n\n");
    let q = |s: &str| {
        if s.contains([',', '"']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for g in &c.groups {
        for m in &g.methods {
            let mut rows: Vec<(String, f64, f64, usize)> = m
                .metrics
                .iter()
                .map(|(k, s)| (k.clone(), s.mean, s.std, s.n))
                .collect();
            if let Some(x) = m.gap_to_retrain {
                rows.push(("gap_to_retrain".into(), x, 0.0, m.seeds.len()));
            }
            if let Some(x) = m.speedup {
                rows.push(("speedup".into(), x, 0.0, m.seeds.len()));
            }
            for (k, mean, std, n) in rows {
                out.push_str(&format!(
                    "{},{},{},{k},{mean},{std},{n}\n",
                    q(&g.dataset),
                    q(&scenario_label(g)),
                    q(&m.method)
                ));
            }
        }
    }
    out
}

/// File-name-safe form of a group, e.g. `fashion_mnist-random_10`.
pub fn slug(g: &Group) -> String {
    slug_of(&g.dataset, &scenario_label(g))
}

/// The scenario, and the test part when the metrics are on one: `random 10% (test 8000)`.
pub fn scenario_label(g: &Group) -> String {
    match g.test_part {
        Some(n) => format!("{} (test {n})", g.scenario),
        None => g.scenario.clone(),
    }
}

/// File-name-safe form of a dataset and scenario.
pub fn slug_of(dataset: &str, scenario: &str) -> String {
    let raw = format!("{dataset}-{scenario}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes comparison.md, comparison.csv, comparison.json, report.html (its title: `title`) and
/// the plots into `dir`. Returns the files written and any plots that could not be drawn (with
/// why).
pub fn write_all(
    c: &Comparison,
    dir: &Path,
    title: &str,
) -> Result<(Vec<PathBuf>, Vec<String>), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let json = serde_json::to_vec_pretty(c).expect("a comparison serializes");
    for (name, bytes) in [
        ("comparison.md", markdown(c).into_bytes()),
        ("comparison.csv", csv(c).into_bytes()),
        ("comparison.json", json),
        ("report.html", html::page(c, title).into_bytes()),
    ] {
        let p = dir.join(name);
        camu_core::cache::write_atomic(&p, &bytes).map_err(|source| ReportError {
            path: p.clone(),
            source,
        })?;
        files.push(p);
    }
    let (plotted, skipped) = plots::draw_all(c, dir);
    files.extend(plotted);
    Ok((files, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(method: &str, seed: i64, ra: f64, fa: f64, time: f64) -> Row {
        let m = json!({
            "dataset": "fashion_mnist", "method": method, "seed": seed,
            "scenario": {"scenario": "random", "fraction": 0.1},
            "acc_remain_train": ra, "acc_forget_train": fa, "acc_test": 0.9, "mia_camu": 0.5,
            "unlearn_time_s": time,
        });
        Row {
            stage: format!("evaluate@{method},{seed}"),
            key: Some(format!("{method}{seed}key")),
            metrics: m.as_object().unwrap().clone(),
            tuned: None,
        }
    }

    #[test]
    fn aggregates_with_population_std_gap_and_speedup() {
        let results = Results {
            rows: vec![
                row("retrain", 0, 0.90, 0.80, 100.0),
                row("retrain", 1, 0.92, 0.84, 100.0),
                row("camu", 0, 0.88, 0.80, 10.0),
                row("camu", 1, 0.90, 0.84, 30.0),
            ],
            missing: vec!["evaluate@scrub".into()],
            rejected: vec![],
            searches: vec![],
            audits: vec![],
            audit_points: BTreeMap::new(),
            timeline: vec![],
        };
        let c = aggregate(&results);
        let g = &c.groups[0];
        assert_eq!(g.scenario, "random 10%");
        assert_eq!(g.methods[0].method, "retrain");
        let ra = &g.methods[0].metrics["acc_remain_train"];
        assert!(
            (ra.mean - 0.91).abs() < 1e-12 && (ra.std - 0.01).abs() < 1e-12,
            "{ra:?}"
        );
        let camu = &g.methods[1];
        // |0.89-0.91| on RA only: 2 points over 4 metrics = 0.5.
        assert!((camu.gap_to_retrain.unwrap() - 0.5).abs() < 1e-9);
        assert!((camu.speedup.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(g.methods[0].gap_to_retrain, Some(0.0));
        let md = markdown(&c);
        assert_eq!(
            md,
            "### fashion_mnist - random 10% (seeds: 0, 1)\n\n\
             | method | RA | FA | TA | MIA | time (s) | speed-up | gap to retrain |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n\
             | retrain (reference) | 91.00 ± 1.00 | 82.00 ± 2.00 | 90.00 ± 0.00 | 50.00 ± 0.00 | 100.00 ± 0.00 | 1.00x | 0.00 |\n\
             | camu | 89.00 ± 1.00 | 82.00 ± 2.00 | 90.00 ± 0.00 | 50.00 ± 0.00 | 20.00 ± 10.00 | 5.00x | 0.50 |\n\n\
             Accuracies and MIA in percent, mean ± population std over seeds; gap to retrain in percentage points.\n\n\
             Sources (evaluate record keys, `cache/records/KEY.json`; full keys and each record's inputs in comparison.json): \
             random 10% / retrain: s0 `retrain0key`, s1 `retrain1key`; random 10% / camu: s0 `camu0key`, s1 `camu1key`.\n\n\
             not yet computed (1): evaluate@scrub\n"
        );
        let csv = csv(&c);
        assert!(
            csv.contains("fashion_mnist,random 10%,camu,speedup,5,0,2\n"),
            "{csv}"
        );
    }

    /// A row as `evaluate` records a model with non-finite outputs.
    fn diverged_row(method: &str, seed: i64, time: f64) -> Row {
        let mut r = row(method, seed, 0.0, 0.0, time);
        for k in [
            "acc_remain_train",
            "acc_forget_train",
            "acc_test",
            "mia_camu",
        ] {
            r.metrics.insert(k.into(), Value::Null);
        }
        r.metrics.insert("diverged".into(), json!(true));
        r
    }

    #[test]
    fn diverged_methods_are_reported_as_diverged_and_not_ranked() {
        let results = Results {
            rows: vec![
                row("retrain", 0, 0.90, 0.80, 100.0),
                row("retrain", 1, 0.92, 0.84, 100.0),
                diverged_row("neggrad", 0, 1.0),
                diverged_row("neggrad", 1, 1.0),
                row("ssd", 0, 0.90, 0.80, 10.0),
                diverged_row("ssd", 1, 10.0),
            ],
            ..Results::default()
        };
        let c = aggregate(&results);
        let g = &c.groups[0];
        let ng = g.methods.iter().find(|m| m.method == "neggrad").unwrap();
        assert_eq!(ng.diverged_seeds, vec![0, 1]);
        assert!(!ng.metrics.contains_key("acc_test"), "no accuracy from NaN");
        assert_eq!((ng.gap_to_retrain, ng.speedup), (None, None));
        let ssd = g.methods.iter().find(|m| m.method == "ssd").unwrap();
        assert_eq!((ssd.gap_to_retrain, ssd.speedup), (None, None));
        assert_eq!(ssd.metrics["acc_remain_train"].n, 1, "the finite seed only");
        let md = markdown(&c);
        assert!(
            md.contains(
                "| neggrad | diverged | diverged | diverged | diverged | 1.00 ± 0.00 | - | - |"
            ),
            "{md}"
        );
        assert!(
            md.contains("- neggrad: diverged (non-finite outputs) in seed 0, 1; left out of the gap and speed-up ranking\n"),
            "{md}"
        );
        assert!(
            md.contains("- ssd: diverged (non-finite outputs) in seed 1; left out of the gap and speed-up ranking; its other cells average the remaining seeds"),
            "{md}"
        );
        // Every seed's number is traceable to its evaluate record.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json["groups"][0]["methods"][1]["sources"][1]["key"],
            "neggrad1key"
        );
    }

    #[test]
    fn results_on_a_test_part_are_a_group_of_their_own() {
        let mut part = row("camu", 0, 0.9, 0.8, 1.0);
        part.metrics.insert("test_set".into(), json!("test"));
        part.metrics.insert("n_test".into(), json!(8000));
        let results = Results {
            rows: vec![row("camu", 0, 0.9, 0.8, 1.0), part],
            ..Results::default()
        };
        let c = aggregate(&results);
        let parts: Vec<Option<i64>> = c.groups.iter().map(|g| g.test_part).collect();
        assert_eq!(parts, [None, Some(8000)]);
        assert_eq!(
            c.groups[1].methods[0].seeds,
            [0],
            "not merged with the whole-set row"
        );
        assert_eq!(slug(&c.groups[1]), "fashion_mnist-random_10_test_8000");
        assert!(markdown(&c).contains("(seeds: 0; on 8000 test samples, the rest"));
    }

    #[test]
    fn partial_results_are_flagged() {
        let results = Results {
            rows: vec![row("camu", 0, 0.9, 0.8, 1.0)],
            ..Results::default()
        };
        let c = aggregate(&results);
        assert!(c.groups[0].notes[0].contains("no retrain results yet"));
        assert_eq!(c.groups[0].methods[0].gap_to_retrain, None);
    }

    /// The first group's summary of `method`.
    fn summary<'a>(c: &'a Comparison, method: &str) -> &'a MethodSummary {
        c.groups[0]
            .methods
            .iter()
            .find(|m| m.method == method)
            .unwrap()
    }

    #[test]
    fn per_class_accuracies_are_averaged_over_seeds_and_shown_against_retrain() {
        let with = |method: &str, seed: i64, accs: serde_json::Value| {
            let mut r = row(method, seed, 0.9, 0.1, 10.0);
            r.metrics.insert("acc_test_per_class".into(), accs);
            r
        };
        let results = Results {
            rows: vec![
                with("retrain", 0, json!([0.9, 0.8, null])),
                with("retrain", 1, json!([0.7, 0.8, null])),
                with("collapse", 0, json!([0.0, 0.9, null])),
                // Out of range: left out of the mean.
                with("collapse", 1, json!([0.2, 1.5, null])),
            ],
            ..Results::default()
        };
        let c = aggregate(&results);
        let m = |name: &str| summary(&c, name).per_class["acc_test_per_class"].clone();
        assert_eq!(m("retrain"), [Some(0.8), Some(0.8), None]);
        let collapse = m("collapse");
        assert!((collapse[0].unwrap() - 0.1).abs() < 1e-12 && collapse[1] == Some(0.9));
        let page = html::page(&c, "t");
        // Class 0: collapse 10.0% against retrain's 80.0%, 70 points below.
        assert!(
            page.contains(">10.0</td>") && page.contains(">-70.0</td>"),
            "{page}"
        );
        assert!(page.contains("Per-class difference to retrain (points) on test"));
    }

    #[test]
    fn layer_similarity_is_averaged_per_layer_in_the_model_order() {
        let with = |method: &str, seed: i64, cka: serde_json::Value| {
            let mut r = row(method, seed, 0.9, 0.1, 10.0);
            if !cka.is_null() {
                r.metrics.insert("cka_to_retrain".into(), cka);
            }
            r
        };
        let layer = |l: &str, v: serde_json::Value| json!({"layer": l, "cka": v});
        let results = Results {
            rows: vec![
                with(
                    "camu",
                    0,
                    json!([layer("stem", json!(0.9)), layer("fc", json!(0.5))]),
                ),
                with(
                    "camu",
                    1,
                    json!([layer("stem", json!(0.7)), layer("fc", json!(null))]),
                ),
                // An evaluation from before CKA was recorded.
                with("finetune", 0, json!(null)),
            ],
            ..Results::default()
        };
        let c = aggregate(&results);
        let m = |name: &str| summary(&c, name).cka.clone();
        let camu = m("camu");
        assert_eq!(camu.len(), 2);
        assert_eq!(camu[0].0, "stem");
        assert!((camu[0].1.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(camu[1], ("fc".to_string(), Some(0.5)));
        assert!(m("finetune").is_empty());
        let page = html::page(&c, "t");
        assert!(page.contains("<th>stem</th><th>fc</th>"), "{page}");
        assert!(page.contains(">80.0</td>") && page.contains(">50.0</td>"));
        // No evaluation recorded it: the page says how to get it.
        let none = Results {
            rows: vec![with("finetune", 0, json!(null))],
            ..Results::default()
        };
        assert!(
            html::page(&aggregate(&none), "t").contains("evaluate with <code>cka: true</code>")
        );
    }
}
