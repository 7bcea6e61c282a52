//! `report.html`: the whole comparison as one self-contained page (no network: styles, scripts
//! and figures inline). Tables sort by a click on their header; each cell is the mean ± std with
//! its seeds in a tooltip, each method links to the records behind it; the figures carry error
//! bars; the run's timeline and cost per kind and per method come from the cache records.

use super::audit::{Audit, Ranking, beside};
use super::plots::PlotError;
use super::search::{Search, values_text};
use super::{Comparison, Group, MethodSummary, fmt_stat, plots, shown};
use crate::metrics::Metric;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One cached stage as it ran: the timeline's bar.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Span {
    pub stage: String,
    pub kind: String,
    /// The `method` parameter, for unlearn stages and the like.
    pub method: Option<String>,
    pub started_at: f64,
    pub duration_s: f64,
    pub threads: Option<usize>,
    pub gpu_share: Option<f64>,
    pub device: String,
    pub attempts: u32,
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// An anchor-safe id.
fn id(parts: &[&str]) -> String {
    parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;color:#1b1b1b}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:15px;margin:20px 0 6px}
nav a{margin-right:14px}.meta{color:#555}.note{color:#555;font-size:13px}
.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f4f4f4;cursor:pointer;user-select:none}
th:first-child,td:first-child{text-align:left}tr.ref td{background:#f6faff}td.miss{color:#999}
th[data-dir=asc]::after{content:' \\25B2'}th[data-dir=desc]::after{content:' \\25BC'}
figure{margin:10px 0;display:inline-block;vertical-align:top;max-width:100%}figure svg{max-width:100%;height:auto}
details{margin:4px 0 10px;font-size:13px}code{font-size:12px}
@media print{nav,th::after{display:none}body{max-width:none}figure{page-break-inside:avoid}}";

const SCRIPT: &str = "(function(){
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th){th.addEventListener('click',function(){
  var col=th.cellIndex,body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  var dir=th.dataset.dir==='asc'?-1:1;t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});
  th.dataset.dir=dir===1?'asc':'desc';
  function key(r){var c=r.cells[col];if(!c)return '';var v=c.getAttribute('data-v');return v===null?c.textContent:parseFloat(v)}
  rows.sort(function(a,b){var x=key(a),y=key(b);
   if(typeof x==='number'&&typeof y==='number'){if(isNaN(x))return 1;if(isNaN(y))return -1;return (x-y)*dir}
   return String(x).localeCompare(String(y))*dir});
  rows.forEach(function(r){body.appendChild(r)});
 })})});
document.body.setAttribute('data-js','ok');
window.addEventListener('load',function(){document.body.setAttribute('data-load-ms',String(Math.round(performance.now())))});
})();";

fn stat_cell(s: Option<&super::Stat>, metric: &Metric, seeds: &[i64]) -> String {
    match s {
        None => "<td class=\"miss\" data-v=\"NaN\">-</td>".into(),
        Some(st) => {
            let seeds: Vec<String> = seeds.iter().map(i64::to_string).collect();
            format!(
                "<td data-v=\"{}\" title=\"mean ± population std over {} value(s); seeds {}\">{}</td>",
                st.mean,
                st.n,
                seeds.join(", "),
                esc(&fmt_stat(Some(st), metric))
            )
        }
    }
}

fn num_cell(v: Option<f64>, text: String) -> String {
    match v {
        Some(x) => format!("<td data-v=\"{x}\">{}</td>", esc(&text)),
        None => "<td class=\"miss\" data-v=\"NaN\">-</td>".into(),
    }
}

fn group_table(out: &mut String, gi: usize, g: &Group, audits: &[Audit]) {
    let cols = shown(g);
    let audited = beside(audits, &g.dataset, &g.scenario);
    out.push_str("<div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>method</th>");
    for c in &cols {
        let _ = write!(out, "<th>{}</th>", esc(c.header));
    }
    out.push_str("<th>speed-up</th><th>gap to retrain</th>");
    if !audited.is_empty() {
        out.push_str("<th>F</th><th>final</th><th>U-LiRA acc</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for m in &g.methods {
        let anchor = id(&["prov", &gi.to_string(), &m.method]);
        let class = if m.method == "retrain" {
            " class=\"ref\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td><a href=\"#{anchor}\">{}</a></td>",
            esc(&m.method)
        );
        for c in &cols {
            if !m.metrics.contains_key(c.key) && !m.diverged_seeds.is_empty() && c.from_outputs {
                out.push_str("<td class=\"miss\" data-v=\"NaN\">diverged</td>");
            } else {
                out.push_str(&stat_cell(m.metrics.get(c.key), c, &m.seeds));
            }
        }
        out.push_str(&num_cell(
            m.speedup,
            m.speedup.map(|s| format!("{s:.2}x")).unwrap_or_default(),
        ));
        out.push_str(&num_cell(
            m.gap_to_retrain,
            m.gap_to_retrain
                .map(|s| format!("{s:.2}"))
                .unwrap_or_default(),
        ));
        if !audited.is_empty() {
            let a = audited.get(m.method.as_str());
            for v in [
                a.and_then(|a| a.forgetting_quality),
                a.and_then(|a| a.final_score),
                a.and_then(|a| a.ulira_accuracy),
            ] {
                out.push_str(&num_cell(
                    v,
                    v.map(|x| format!("{x:.3}")).unwrap_or_default(),
                ));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    for n in &g.notes {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    // Where every number came from.
    out.push_str("<details><summary>Provenance: the evaluate records behind each row</summary>");
    for m in &g.methods {
        let anchor = id(&["prov", &gi.to_string(), &m.method]);
        let _ = write!(out, "<p id=\"{anchor}\"><b>{}</b></p><ul>", esc(&m.method));
        for s in &m.sources {
            let seed = s.seed.map(|x| x.to_string()).unwrap_or("-".into());
            let model = s
                .provenance
                .as_ref()
                .map(|p| {
                    let m = &p["model"];
                    format!(
                        "; model {} <code>{}</code> (kind version {}, method version {})",
                        esc(m["stage"].as_str().unwrap_or("-")),
                        esc(m["key"].as_str().unwrap_or("-")),
                        esc(&m["kind_version"].to_string()),
                        esc(&m["method_version"].to_string())
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<li>seed {seed}: {} record <code>{}</code>{model}</li>",
                esc(&s.stage),
                esc(s.key.as_deref().unwrap_or("-"))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</details>");
}

/// A cell of the per-class heatmap: an accuracy (green when high) or a difference to retrain
/// in points (red below, blue above).
fn heat_cell(v: Option<f64>, diff: bool) -> String {
    let Some(v) = v else {
        return "<td class=\"miss\" data-v=\"NaN\">-</td>".into();
    };
    let (text, style) = if diff {
        let p = v * 100.0;
        let a = (p.abs() / 20.0).min(1.0) * 0.8;
        let rgb = if p < 0.0 { "214,39,40" } else { "31,119,180" };
        (format!("{p:+.1}"), format!("background:rgba({rgb},{a:.2})"))
    } else {
        (
            format!("{:.1}", v * 100.0),
            format!("background:hsl({:.0},65%,80%)", 120.0 * v),
        )
    };
    format!("<td data-v=\"{v}\" style=\"{style}\">{text}</td>")
}

/// Per-class accuracy, method x class, for each part the evaluations recorded, and each
/// method's difference to retrain; or a note where no evaluation recorded them.
fn per_class_html(out: &mut String, g: &Group) {
    let mut any = false;
    for (key, label) in crate::metrics::PER_CLASS {
        let rows: Vec<(&str, &Vec<Option<f64>>)> = g
            .methods
            .iter()
            .filter_map(|m| Some((m.method.as_str(), m.per_class.get(key)?)))
            .collect();
        let Some(classes) = rows.iter().map(|r| r.1.len()).max() else {
            continue;
        };
        any = true;
        let retrain = rows.iter().find(|r| r.0 == "retrain").map(|r| r.1);
        for diff in [false, true] {
            if diff && retrain.is_none() {
                continue;
            }
            let what = if diff {
                "difference to retrain (points)"
            } else {
                "accuracy (%)"
            };
            let _ = write!(
                out,
                "<p class=\"meta\">Per-class {what} on {}, mean over seeds:</p><div class=\"wrap\"><table class=\"sortable heat\"><thead><tr><th>method</th>",
                esc(label)
            );
            for c in 0..classes {
                let _ = write!(out, "<th>{c}</th>");
            }
            out.push_str("</tr></thead><tbody>");
            for (method, accs) in &rows {
                let class = if *method == "retrain" {
                    " class=\"ref\""
                } else {
                    ""
                };
                let _ = write!(out, "<tr{class}><td>{}</td>", esc(method));
                for c in 0..classes {
                    let v = accs.get(c).copied().flatten();
                    let v = if diff {
                        v.zip(retrain.and_then(|r| r.get(c).copied().flatten()))
                            .map(|(a, b)| a - b)
                    } else {
                        v
                    };
                    out.push_str(&heat_cell(v, diff));
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table></div>");
        }
    }
    if !any {
        out.push_str("<p class=\"note\">Per-class accuracy: not recorded (evaluate with <code>per_class: true</code>).</p>");
    }
}

/// Layer-wise similarity to retrain: method x layer, linear CKA averaged over seeds; or a note
/// where no evaluation recorded it.
fn cka_html(out: &mut String, g: &Group) {
    let rows: Vec<&MethodSummary> = g.methods.iter().filter(|m| !m.cka.is_empty()).collect();
    let Some(widest) = rows.iter().max_by_key(|m| m.cka.len()) else {
        out.push_str("<p class=\"note\">Layer-wise similarity to retrain: not recorded (evaluate with <code>cka: true</code> and a <code>reference</code>).</p>");
        return;
    };
    let layers: Vec<&str> = widest.cka.iter().map(|l| l.0.as_str()).collect();
    out.push_str("<p class=\"meta\">Layer-wise similarity to retrain: linear CKA of each layer's outputs on the same test images, mean over seeds (100 = the layer represents them as retrain's does, up to rotation and scale):</p><div class=\"wrap\"><table class=\"sortable heat\"><thead><tr><th>method</th>");
    for l in &layers {
        let _ = write!(out, "<th>{}</th>", esc(l));
    }
    out.push_str("</tr></thead><tbody>");
    for m in rows {
        let _ = write!(out, "<tr><td>{}</td>", esc(&m.method));
        for l in &layers {
            let v = m.cka.iter().find(|c| c.0 == *l).and_then(|c| c.1);
            out.push_str(&heat_cell(v, false));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

fn figure(out: &mut String, svg: Result<String, PlotError>, what: &str) {
    match svg {
        Ok(s) => {
            let _ = write!(out, "<figure aria-label=\"{}\">{s}</figure>", esc(what));
        }
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"note\">{}: not drawn ({})</p>",
                esc(what),
                esc(&e.to_string())
            );
        }
    }
}

fn searches_html(out: &mut String, searches: &[Search]) {
    for s in searches {
        let _ = write!(
            out,
            "<h3>{} - {}: {} ({})</h3>",
            esc(&s.dataset),
            esc(&s.scenario),
            esc(&s.method),
            esc(&s.select)
        );
        let chosen_text = match (&s.values, &s.note) {
            (Some(v), _) => format!("chosen: {}", values_text(v, &s.vars)),
            (None, Some(n)) => n.clone(),
            (None, None) => "nothing chosen".into(),
        };
        let _ = write!(out, "<p class=\"meta\">{}</p>", esc(&chosen_text));
        out.push_str("<div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>trial</th><th>values</th><th>gap on the selection data</th><th>excluded</th></tr></thead><tbody>");
        for t in &s.trials {
            let mark = if s.chosen.as_deref() == Some(t.stage.as_str()) {
                " class=\"ref\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr{mark}><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
                esc(&t.stage),
                esc(&values_text(&t.values, &s.vars)),
                num_cell(t.gap, t.gap.map(|g| format!("{g:.2}")).unwrap_or_default()),
                esc(t.excluded.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table></div>");
    }
}

fn audits_html(out: &mut String, audits: &[Audit], rankings: &[Ranking]) {
    out.push_str("<div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>dataset - scenario</th><th>method (runs of)</th><th>runs</th><th>F</th><th>F 95%</th><th>final</th><th>U-LiRA acc</th><th>U-LiRA AUC</th><th>hardest (index: epsilon)</th></tr></thead><tbody>");
    for a in audits {
        let ci = a
            .ci95
            .map(|(l, h)| format!("{l:.3}-{h:.3}"))
            .unwrap_or("-".into());
        let hardest: Vec<String> = a
            .hardest
            .iter()
            .take(5)
            .map(|(i, e)| format!("{i}: {e:.1}"))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{} - {}</td><td>{} ({})</td><td data-v=\"{}\">{}</td>{}<td>{ci}</td>{}{}{}<td>{}</td></tr>",
            esc(&a.dataset),
            esc(&a.scenario),
            esc(&a.method),
            esc(&a.unlearned),
            a.runs,
            a.runs,
            num_cell(
                a.forgetting_quality,
                a.forgetting_quality
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or_default()
            ),
            num_cell(
                a.final_score,
                a.final_score.map(|x| format!("{x:.3}")).unwrap_or_default()
            ),
            num_cell(
                a.ulira_accuracy,
                a.ulira_accuracy
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or_default()
            ),
            num_cell(
                a.ulira_auc,
                a.ulira_auc.map(|x| format!("{x:.3}")).unwrap_or_default()
            ),
            esc(&hardest.join(", "))
        );
    }
    out.push_str("</tbody></table></div>");
    if !rankings.is_empty() {
        out.push_str("<p class=\"meta\">Order by F, and how often it holds whole when the forget examples are drawn again (paired bootstrap):</p><ul>");
        for r in rankings {
            let s = &r.stability;
            let order: Vec<String> = s
                .order
                .iter()
                .zip(&s.f)
                .map(|(m, f)| format!("{m} {f:.3}"))
                .collect();
            let _ = write!(
                out,
                "<li>{} - {}, {} runs: {} ({:.1}% of {} resamples)</li>",
                esc(&r.dataset),
                esc(&r.scenario),
                r.runs,
                esc(&order.join(" > ")),
                100.0 * s.whole,
                s.resamples
            );
        }
        out.push_str("</ul>");
    }
}

/// The timeline of the run's stages as an SVG: one row per stage by start time, coloured by
/// kind, on a time axis from the first start.
fn timeline_svg(spans: &[Span]) -> String {
    let mut spans: Vec<&Span> = spans.iter().collect();
    spans.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
    let t0 = spans.first().map_or(0.0, |s| s.started_at);
    let t1 = spans
        .iter()
        .map(|s| s.started_at + s.duration_s)
        .fold(t0 + 1.0, f64::max);
    let (w, row, left) = (1100.0, 4.0, 10.0);
    let h = spans.len() as f64 * row + 40.0;
    let x = |t: f64| left + (t - t0) / (t1 - t0) * (w - 2.0 * left);
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = spans.iter().map(|s| s.kind.as_str()).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    const COLOURS: [&str; 10] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let colour = |k: &str| COLOURS[kinds.iter().position(|x| *x == k).unwrap_or(0) % COLOURS.len()];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"timeline\">"
    );
    for (i, sp) in spans.iter().enumerate() {
        let (a, b) = (x(sp.started_at), x(sp.started_at + sp.duration_s));
        let threads = sp
            .threads
            .map(|t| format!(", {t} threads"))
            .unwrap_or_default();
        let gpu = sp
            .gpu_share
            .map(|g| format!(", GPU share {g}"))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} ({}): {:.1} s from +{:.0} s{threads}{gpu}, {}, {} attempt(s)</title></rect>",
            i as f64 * row,
            (b - a).max(0.8),
            row - 1.0,
            colour(&sp.kind),
            esc(&sp.stage),
            esc(&sp.kind),
            sp.duration_s,
            sp.started_at - t0,
            esc(&sp.device),
            sp.attempts
        );
    }
    // Five ticks along the time axis, under the bars.
    let axis = spans.len() as f64 * row + 2.0;
    for k in 0..=4 {
        let t = t0 + (t1 - t0) * k as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{axis:.1}\" stroke=\"#ccc\" stroke-width=\"0.5\"/>",
            x = x(t)
        );
    }
    let y = spans.len() as f64 * row + 14.0;
    let mut lx = left;
    for k in &kinds {
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\" font-family=\"sans-serif\">{}</text>",
            y - 9.0,
            colour(k),
            lx + 14.0,
            y,
            esc(k)
        );
        lx += 24.0 + 7.0 * k.len() as f64;
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-family=\"sans-serif\" text-anchor=\"end\">{:.0} s from the first start to the last end (grid: quarters)</text></svg>",
        w - left,
        y + 18.0,
        t1 - t0
    );
    s
}

fn cost_table(out: &mut String, title: &str, by: &BTreeMap<String, (usize, f64)>) {
    let _ = write!(
        out,
        "<div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>{}</th><th>stages</th><th>stage-seconds</th><th>mean s per stage</th></tr></thead><tbody>",
        esc(title)
    );
    for (k, (n, secs)) in by {
        let _ = write!(
            out,
            "<tr><td>{}</td><td data-v=\"{n}\">{n}</td><td data-v=\"{secs}\">{secs:.1}</td><td data-v=\"{}\">{:.1}</td></tr>",
            esc(k),
            secs / *n as f64,
            secs / *n as f64
        );
    }
    out.push_str("</tbody></table></div>");
}

fn run_html(out: &mut String, spans: &[Span]) {
    if spans.is_empty() {
        out.push_str("<p class=\"note\">No stage records to show (a `compare` stage sees only its inputs).</p>");
        return;
    }
    out.push_str(&format!(
        "<p class=\"meta\">{} stages with a cached result; each bar is when its result was computed (hover for threads, GPU share, device and attempts).</p>",
        spans.len()
    ));
    out.push_str("<div class=\"wrap\">");
    out.push_str(&timeline_svg(spans));
    out.push_str("</div>");
    let mut by_kind: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut by_method: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for s in spans {
        let e = by_kind.entry(s.kind.clone()).or_default();
        e.0 += 1;
        e.1 += s.duration_s;
        if let Some(m) = &s.method {
            let e = by_method.entry(m.clone()).or_default();
            e.0 += 1;
            e.1 += s.duration_s;
        }
    }
    cost_table(out, "kind", &by_kind);
    if !by_method.is_empty() {
        cost_table(out, "method", &by_method);
    }
}

/// The page for a comparison; `title` names the pipeline.
pub fn page(c: &Comparison, title: &str) -> String {
    let mut out = String::with_capacity(1 << 16);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>camu-pipe report: {t}</title><style>{STYLE}</style></head><body><header><h1>{t}</h1><p class=\"meta\">camu-pipe {v}. Accuracies and MIA in percent, mean ± population std over seeds (hover a cell for its seeds); gap to retrain in percentage points. Click a column header to sort.</p><nav><a href=\"#results\">Results</a>",
        t = esc(title),
        v = env!("CARGO_PKG_VERSION")
    );
    if !c.searches.is_empty() {
        out.push_str("<a href=\"#searches\">Searches</a>");
    }
    if !c.audits.is_empty() {
        out.push_str("<a href=\"#audit\">Per-example audit</a>");
    }
    out.push_str("<a href=\"#run\">The run</a></nav></header>");
    out.push_str("<section id=\"results\"><h2>Results</h2>");
    if c.groups.is_empty() {
        out.push_str("<p class=\"note\">No evaluate stage has a result yet.</p>");
    }
    for (gi, g) in c.groups.iter().enumerate() {
        let seeds: std::collections::BTreeSet<i64> = g
            .methods
            .iter()
            .flat_map(|m| m.seeds.iter().copied())
            .collect();
        let seeds: Vec<String> = seeds.iter().map(i64::to_string).collect();
        let _ = write!(
            out,
            "<h3 id=\"{}\">{} - {} (seeds: {})</h3>",
            id(&["g", &gi.to_string()]),
            esc(&g.dataset),
            esc(&g.scenario),
            seeds.join(", ")
        );
        group_table(&mut out, gi, g, &c.audits);
        figure(
            &mut out,
            plots::svg_bars(g),
            "RA, FA, TA and MIA per method",
        );
        if g.methods.iter().any(|m| m.gap_to_retrain.is_some()) {
            figure(
                &mut out,
                plots::svg_tradeoff(g),
                "unlearning time against gap to retrain",
            );
        }
        if g.methods.iter().any(|m| m.relearn_curve.is_some()) {
            figure(&mut out, plots::svg_relearn(g), "relearning curves");
        }
        per_class_html(&mut out, g);
        cka_html(&mut out, g);
    }
    out.push_str("</section>");
    if !c.searches.is_empty() {
        out.push_str("<section id=\"searches\"><h2>Searches</h2>");
        searches_html(&mut out, &c.searches);
        out.push_str("</section>");
    }
    if !c.audits.is_empty() {
        out.push_str("<section id=\"audit\"><h2>Per-example audit</h2>");
        audits_html(&mut out, &c.audits, &c.audit_rankings);
        for svg in plots::svg_epsilons(&c.audits) {
            figure(&mut out, svg, "per-example epsilons");
        }
        out.push_str("</section>");
    }
    out.push_str("<section id=\"run\"><h2>The run</h2>");
    run_html(&mut out, &c.timeline);
    out.push_str("</section>");
    if !c.missing.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">Not yet computed ({}): {}</p>",
            c.missing.len(),
            esc(&c.missing.join(", "))
        );
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_ids_are_safe() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(id(&["prov", "0", "camu (tuned)"]), "prov-0-camu__tuned_");
    }

    #[test]
    fn the_timeline_has_a_bar_per_stage_and_the_cost_tables_add_up() {
        let span = |stage: &str, kind: &str, method: Option<&str>, t: f64, d: f64| Span {
            stage: stage.into(),
            kind: kind.into(),
            method: method.map(Into::into),
            started_at: t,
            duration_s: d,
            threads: Some(1),
            gpu_share: None,
            device: "cpu".into(),
            attempts: 1,
        };
        let spans = [
            span("train", "train", None, 100.0, 10.0),
            span("unlearn@m=camu", "unlearn", Some("camu"), 110.0, 4.0),
            span("unlearn@m=scrub", "unlearn", Some("scrub"), 110.0, 6.0),
        ];
        let svg = timeline_svg(&spans);
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 2,
            "a bar per stage, a key per kind"
        );
        assert!(svg.contains("16 s from the first start to the last end"));
        assert_eq!(svg.matches("<line").count(), 5);
        let mut out = String::new();
        run_html(&mut out, &spans);
        assert!(
            out.contains("<td>unlearn</td><td data-v=\"2\">2</td><td data-v=\"10\">10.0</td>"),
            "{out}"
        );
    }
}
