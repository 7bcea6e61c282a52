//! Plots of a comparison, as SVG and PNG (plotters): grouped bars of RA/FA/TA/MIA per method,
//! unlearning time against gap to retrain, relearn curves, and each search's criterion across its
//! trials, and each audit's per-example epsilons.

use super::audit::{Audit, beside};
use super::search::{Search, values_text};
use super::{Comparison, Group, scenario_label, slug, slug_of};
use crate::metrics::{Metric, gap_metrics};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Fonts tried for text (plotters renders glyphs itself, for SVG layout too).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Why a plot is not drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlotError {
    #[error("no TrueType font found (install fonts-dejavu-core or set CAMU_FONT)")]
    NoFont,
    /// plotters' error, as it prints itself (its type is generic over the backend).
    #[error("drawing failed: {0}")]
    Draw(String),
    /// Nothing to draw yet: what the plot needs.
    #[error("no {0}")]
    Nothing(&'static str),
}

/// Registers a system font once; the error says why plots cannot be drawn.
fn font() -> Result<(), PlotError> {
    static READY: OnceLock<Result<(), PlotError>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let env = std::env::var("CAMU_FONT").ok();
            let candidates = env.iter().map(String::as_str).chain(FONTS.iter().copied());
            for path in candidates {
                if let Ok(bytes) = std::fs::read(path) {
                    // plotters keeps fonts for the life of the process.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                        .is_ok()
                    {
                        return Ok(());
                    }
                }
            }
            Err(PlotError::NoFont)
        })
        .clone()
}

fn colour(i: usize) -> RGBColor {
    // Enough distinct colours for retrain, CaMU and every baseline in one plot.
    const P: [RGBColor; 16] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 128),
        RGBColor(128, 0, 0),
        RGBColor(0, 128, 128),
        RGBColor(255, 215, 0),
        RGBColor(75, 0, 130),
        RGBColor(0, 0, 0),
    ];
    P[i % P.len()]
}

type Res = Result<(), PlotError>;

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

fn bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, g: &Group) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let n = g.methods.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} - {}", g.dataset, scenario_label(g)),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..100f64)
        .map_err(err)?;
    // A method with a diverged seed is marked; one with no finite seed has no bars at all.
    let names: Vec<String> = g
        .methods
        .iter()
        .map(|m| {
            if m.diverged_seeds.is_empty() {
                m.method.clone()
            } else {
                format!("{} (diverged)", m.method)
            }
        })
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("%")
        .draw()
        .map_err(err)?;
    // The bars are the gap metrics, all percentages.
    let series: Vec<&Metric> = gap_metrics().collect();
    let w = 0.8 / series.len() as f64;
    for (s, metric) in series.iter().enumerate() {
        let (key, label) = (metric.key, metric.header);
        let c = colour(s);
        let rects: Vec<Rectangle<(f64, f64)>> = g
            .methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let v = m.metrics.get(key)?.mean * 100.0;
                let x0 = i as f64 + 0.1 + s as f64 * w;
                Some(Rectangle::new([(x0, 0.0), (x0 + w * 0.95, v)], c.filled()))
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        // Error bars: the std over seeds, where there is more than one.
        let whiskers: Vec<PathElement<(f64, f64)>> = g
            .methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let st = m.metrics.get(key).filter(|st| st.n > 1)?;
                let xc = i as f64 + 0.1 + s as f64 * w + w * 0.475;
                let (lo, hi) = ((st.mean - st.std) * 100.0, (st.mean + st.std) * 100.0);
                Some(PathElement::new(
                    vec![(xc, lo.max(0.0)), (xc, hi.min(100.0))],
                    BLACK.stroke_width(1),
                ))
            })
            .collect();
        chart.draw_series(whiskers).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Tick values for a log axis over [lo, hi]: 1, 2 and 5 per decade, or 1, 2, 3, 5 and 7 where
/// that leaves fewer than four (a range under two decades).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let within = |steps: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|k| steps.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|x| *x >= lo && *x <= hi)
            .collect()
    };
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 4 {
        coarse
    } else {
        within(&[1.0, 2.0, 3.0, 5.0, 7.0])
    }
}

fn tradeoff<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, g: &Group) -> Res {
    root.fill(&WHITE).map_err(err)?;
    // (method, mean time, gap, std of the time over seeds)
    let pts: Vec<(String, f64, f64, f64)> = g
        .methods
        .iter()
        .filter_map(|m| {
            let t = m.metrics.get("unlearn_time_s")?;
            Some((m.method.clone(), t.mean.max(1e-3), m.gap_to_retrain?, t.std))
        })
        .collect();
    let tmax = pts.iter().map(|p| p.1).fold(1.0f64, f64::max) * 2.0;
    let tmin = pts
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(tmax / 4.0)
        / 2.0;
    let gmax = pts.iter().map(|p| p.2).fold(1.0f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "time vs gap to retrain: {} - {}",
                g.dataset,
                scenario_label(g)
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(
            (tmin..tmax)
                .log_scale()
                .with_key_points(log_ticks(tmin, tmax)),
            0f64..gmax,
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("unlearning time (s, log)")
        .y_desc("gap to retrain (points)")
        .x_labels(6)
        .x_label_formatter(&|x| {
            if *x >= 10.0 {
                format!("{x:.0}")
            } else if *x >= 1.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.2}")
            }
        })
        .draw()
        .map_err(err)?;
    // A legend, not labels beside the points: neighbouring points' labels overlapped.
    for (i, (name, t, gap, sd)) in pts.iter().enumerate() {
        let c = colour(i);
        if *sd > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![((t - sd).max(tmin), *gap), ((t + sd).min(tmax), *gap)],
                    c.stroke_width(1),
                )))
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::once(Circle::new((*t, *gap), 5, c.filled())))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 5, y), 5, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn relearn<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, g: &Group) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let curves: Vec<(&str, &Vec<f64>)> = g
        .methods
        .iter()
        .filter_map(|m| Some((m.method.as_str(), m.relearn_curve.as_ref()?)))
        .collect();
    let len = curves.iter().map(|c| c.1.len()).max().unwrap_or(1).max(2);
    let ymax = curves
        .iter()
        .flat_map(|c| c.1.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.1f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("relearning: {} - {}", g.dataset, scenario_label(g)),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..(len - 1) as f64, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("relearn epoch")
        .y_desc("loss on Df")
        .draw()
        .map_err(err)?;
    for (i, (name, c)) in curves.iter().enumerate() {
        let col = colour(i);
        chart
            .draw_series(LineSeries::new(
                c.iter().enumerate().map(|(x, y)| (x as f64, *y)),
                col.stroke_width(2),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// A value's text, and its number when it has one (for ordering an axis).
fn value_key(v: &Value) -> (Option<f64>, String) {
    (v.as_f64(), v.to_string().trim_matches('"').to_string())
}

fn search_panel<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Search) -> Res {
    let Some(first) = s.vars.first() else {
        return Ok(());
    };
    // x: the first variable's values in order; one line per combination of the others.
    let mut xs: Vec<(Option<f64>, String)> = s
        .trials
        .iter()
        .filter_map(|t| t.values.get(first).map(value_key))
        .collect();
    xs.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.1.cmp(&b.1),
    });
    xs.dedup();
    let rest = |t: &Map<String, Value>| -> Map<String, Value> {
        s.vars[1..]
            .iter()
            .filter_map(|v| Some((v.clone(), t.get(v)?.clone())))
            .collect()
    };
    let mut lines: Vec<Map<String, Value>> = Vec::new();
    for t in &s.trials {
        let r = rest(&t.values);
        if !lines.contains(&r) {
            lines.push(r);
        }
    }
    let x_of = |t: &Map<String, Value>| {
        let k = value_key(t.get(first)?);
        xs.iter().position(|x| *x == k)
    };
    let excluded = s.trials.iter().filter(|t| t.gap.is_none()).count();
    let gmax = s.trials.iter().filter_map(|t| t.gap).fold(0.5f64, f64::max) * 1.15;
    let mut caption = format!("{} ({} trials", s.method, s.trials.len());
    if excluded > 0 {
        caption.push_str(&format!(", {excluded} excluded"));
    }
    if !s.pending.is_empty() {
        caption.push_str(&format!(", {} pending", s.pending.len()));
    }
    caption.push(')');
    let n = xs.len().max(1);
    let labels: Vec<String> = xs.iter().map(|x| x.1.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..gmax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc(first.as_str())
        .y_desc("gap (points)")
        .draw()
        .map_err(err)?;
    for (i, line) in lines.iter().enumerate() {
        let col = colour(i);
        let mut pts: Vec<(f64, f64)> = s
            .trials
            .iter()
            .filter(|t| rest(&t.values) == *line)
            .filter_map(|t| Some((x_of(&t.values)? as f64, t.gap?)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let label = if line.is_empty() {
            "trials".to_string()
        } else {
            values_text(line, &s.vars)
        };
        chart
            .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, col.filled())))
            .map_err(err)?;
    }
    // The chosen trial, ringed.
    if let Some(t) = s
        .trials
        .iter()
        .find(|t| s.chosen.as_deref() == Some(t.stage.as_str()))
        && let (Some(x), Some(g)) = (x_of(&t.values), t.gap)
    {
        chart
            .draw_series(std::iter::once(Circle::new(
                (x as f64, g),
                8,
                BLACK.stroke_width(2),
            )))
            .map_err(err)?
            .label("chosen")
            .legend(|(x, y)| Circle::new((x + 7, y), 5, BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The searches of one dataset and scenario, a panel per search.
fn searches<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, group: &[&Search]) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let Some(s0) = group.first() else {
        return Ok(());
    };
    let root = root
        .titled(
            &format!(
                "{} - {}: gap to retrain on the validation part",
                s0.dataset, s0.scenario
            ),
            ("sans-serif", 18),
        )
        .map_err(err)?;
    let cols = group.len().clamp(1, 2);
    let rows = group.len().div_ceil(cols);
    for (panel, s) in root.split_evenly((rows, cols)).iter().zip(group) {
        search_panel(panel, s)?;
    }
    root.present().map_err(err)
}

/// One panel of the epsilon histogram: forget examples per bin of width 0.5, the last bar all
/// beyond the scored bins (the cap of 50 included).
fn epsilon_panel<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, a: &Audit, i: usize) -> Res {
    let n = a.bins.len().max(1);
    let top = a.bins.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "{} ({} runs): F {:.3}",
                a.method,
                a.runs,
                a.forgetting_quality.unwrap_or(f64::NAN)
            ),
            ("sans-serif", 16),
        )
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let b = x.floor() as usize;
            if (x - b as f64 - 0.5).abs() > 0.26 || b >= n {
                String::new()
            } else if b + 1 == n {
                format!(">={}", b as f64 / 2.0)
            } else {
                format!("{}", b as f64 / 2.0)
            }
        })
        .x_desc("epsilon (bin start)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("examples")
        .draw()
        .map_err(err)?;
    let c = colour(i);
    chart
        .draw_series(a.bins.iter().enumerate().map(|(b, &count)| {
            Rectangle::new(
                [(b as f64 + 0.1, 0.0), (b as f64 + 0.9, count as f64)],
                c.filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// The per-example epsilons of each method of one dataset and scenario, at its most runs.
fn epsilons<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, group: &[&Audit]) -> Res {
    root.fill(&WHITE).map_err(err)?;
    let a0 = group.first().ok_or(PlotError::Nothing("audits"))?;
    let root = root
        .titled(
            &format!("{} - {}: per-example epsilon", a0.dataset, a0.scenario),
            ("sans-serif", 18),
        )
        .map_err(err)?;
    let cols = group.len().clamp(1, 3);
    let rows = group.len().div_ceil(cols);
    for (i, (panel, a)) in root
        .split_evenly((rows, cols))
        .iter()
        .zip(group)
        .enumerate()
    {
        epsilon_panel(panel, a, i)?;
    }
    root.present().map_err(err)
}

/// Draws one plot function as `NAME.svg` and `NAME.png`, pushing the files written.
macro_rules! render {
    ($dir:expr, $name:expr, $size:expr, $f:ident, $g:expr, $files:expr) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        let png = $dir.join(format!("{}.png", $name));
        $f(SVGBackend::new(&svg, $size).into_drawing_area(), $g)
            .and_then(|_| {
                $files.push(svg);
                $f(BitMapBackend::new(&png, $size).into_drawing_area(), $g)
            })
            .map(|_| $files.push(png))
    }};
}

/// Draws a figure of one panel per item of a (dataset, scenario) as `PREFIX-SLUG`, unless the
/// group is empty; a failure is pushed to the skipped plots.
macro_rules! panels {
    ($dir:expr, $prefix:literal, $at:expr, $group:expr, $per_row:expr, $panel:expr, $f:ident, $files:expr, $skipped:expr) => {{
        if !$group.is_empty() {
            let name = format!("{}-{}", $prefix, slug_of($at.0, $at.1));
            let size = grid($group.len(), $per_row, $panel);
            let group = $group.as_slice();
            if let Err(e) = render!($dir, name, size, $f, group, $files) {
                $skipped.push(format!("{name}: {e}"));
            }
        }
    }};
}

// The closures passed to `svg_string` are not redundant: a plot function named directly fixes
// the backend's lifetime, where `svg_string` needs it for any.
/// Draws a plot into an SVG string (for the report page).
fn svg_string<T: ?Sized>(
    size: (u32, u32),
    arg: &T,
    f: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>, &T) -> Res,
) -> Result<String, PlotError> {
    font()?;
    let mut out = String::new();
    f(
        SVGBackend::with_string(&mut out, size).into_drawing_area(),
        arg,
    )?;
    Ok(out)
}

#[allow(clippy::redundant_closure)]
pub(super) fn svg_bars(g: &Group) -> Result<String, PlotError> {
    let w = (220 + 110 * g.methods.len() as u32).max(640);
    svg_string((w, 480), g, |a, g| bars(a, g))
}

#[allow(clippy::redundant_closure)]
pub(super) fn svg_tradeoff(g: &Group) -> Result<String, PlotError> {
    svg_string((720, 480), g, |a, g| tradeoff(a, g))
}

#[allow(clippy::redundant_closure)]
pub(super) fn svg_relearn(g: &Group) -> Result<String, PlotError> {
    svg_string((720, 480), g, |a, g| relearn(a, g))
}

/// The epsilon histograms, one figure per dataset and scenario.
#[allow(clippy::redundant_closure)]
pub(super) fn svg_epsilons(audits: &[Audit]) -> Vec<Result<String, PlotError>> {
    scenarios(audits, |a| (&a.dataset, &a.scenario))
        .into_iter()
        .filter_map(|at| {
            let group: Vec<&Audit> = beside(audits, at.0, at.1)
                .into_values()
                .filter(|a| !a.bins.is_empty())
                .collect();
            (!group.is_empty()).then(|| {
                svg_string(
                    grid(group.len(), 3, (360, 280)),
                    group.as_slice(),
                    |a, g| epsilons(a, g),
                )
            })
        })
        .collect()
}

/// The distinct (dataset, scenario) pairs of `items`, in first-seen order.
fn scenarios<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> (&'a String, &'a String),
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for (d, s) in items.iter().map(key) {
        if !out.contains(&(d.as_str(), s.as_str())) {
            out.push((d.as_str(), s.as_str()));
        }
    }
    out
}

/// The size of a figure of `n` panels of `panel` pixels, `per_row` to a row, under a title.
fn grid(n: usize, per_row: usize, panel: (u32, u32)) -> (u32, u32) {
    let cols = n.clamp(1, per_row) as u32;
    let rows = n.div_ceil(per_row).max(1) as u32;
    ((panel.0 * cols + 40).max(640), 40 + panel.1 * rows)
}

/// Draws every plot of every group into `dir`; returns the files written and what was skipped.
pub fn draw_all(c: &Comparison, dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    if let Err(e) = font() {
        skipped.push(format!("plots: {e}"));
        return (files, skipped);
    }
    for at in scenarios(&c.searches, |s| (&s.dataset, &s.scenario)) {
        let group: Vec<&Search> = c
            .searches
            .iter()
            .filter(|s| (s.dataset.as_str(), s.scenario.as_str()) == at && !s.trials.is_empty())
            .collect();
        panels!(
            dir,
            "search",
            at,
            group,
            2,
            (500, 340),
            searches,
            files,
            skipped
        );
    }
    for at in scenarios(&c.audits, |a| (&a.dataset, &a.scenario)) {
        let group: Vec<&Audit> = beside(&c.audits, at.0, at.1)
            .into_values()
            .filter(|a| !a.bins.is_empty())
            .collect();
        panels!(
            dir,
            "epsilons",
            at,
            group,
            3,
            (360, 280),
            epsilons,
            files,
            skipped
        );
    }
    for g in &c.groups {
        let s = slug(g);
        let w = (220 + 110 * g.methods.len() as u32).max(640);
        let bars_res = render!(dir, format!("bars-{s}"), (w, 480), bars, g, files);
        let trade_res = if g.methods.iter().any(|m| m.gap_to_retrain.is_some()) {
            render!(dir, format!("tradeoff-{s}"), (720, 480), tradeoff, g, files)
        } else {
            Err(PlotError::Nothing("retrain results yet"))
        };
        let relearn_res = if g.methods.iter().any(|m| m.relearn_curve.is_some()) {
            render!(dir, format!("relearn-{s}"), (720, 480), relearn, g, files)
        } else {
            Err(PlotError::Nothing(
                "relearn curves (evaluate with relearn: true)",
            ))
        };
        for (name, r) in [
            (format!("bars-{s}"), bars_res),
            (format!("tradeoff-{s}"), trade_res),
            (format!("relearn-{s}"), relearn_res),
        ] {
            if let Err(e) = r {
                skipped.push(format!("{name}: {e}"));
            }
        }
    }
    (files, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_label_every_decade_and_fill_narrow_ranges() {
        assert_eq!(
            log_ticks(0.3, 800.0),
            [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        // 8x, the narrowest range the plot draws: 1-2-5 would leave three ticks.
        assert_eq!(log_ticks(35.0, 280.0), [50.0, 70.0, 100.0, 200.0]);
    }
}
