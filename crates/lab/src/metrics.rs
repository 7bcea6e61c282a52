//! The metric schema: every metric an `evaluate` record carries, in one table that `evaluate`,
//! `compare`, `report` and the plots all read. A new metric is one row here plus its computation
//! in `camu_torch::metrics`.

/// How a metric's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction in [0, 1], shown as a percentage.
    Percent,
    /// A divergence or distance (nats, or the activations' unit).
    Distance,
    Seconds,
    Epochs,
}

/// What a better value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// As close as possible to the retrained model's value.
    NearRetrain,
    Lower,
    Higher,
}

#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The key in `metrics.json`.
    pub key: &'static str,
    /// The column header in tables and the series name in plots.
    pub header: &'static str,
    pub unit: Unit,
    pub better: Better,
    /// Computed from the model's outputs, so null when the model has diverged.
    pub from_outputs: bool,
    /// Aggregated over seeds and shown in the comparison tables.
    pub reported: bool,
    /// Counts toward `gap_to_retrain` (OPTML's ranking number) and is drawn in the bar plots.
    pub gap: bool,
}

const fn m(key: &'static str, header: &'static str, unit: Unit, better: Better) -> Metric {
    Metric {
        key,
        header,
        unit,
        better,
        from_outputs: true,
        reported: true,
        gap: false,
    }
}

const fn gap(mut x: Metric) -> Metric {
    x.gap = true;
    x
}

const fn unreported(mut x: Metric) -> Metric {
    x.reported = false;
    x
}

const fn run_fact(mut x: Metric) -> Metric {
    x.from_outputs = false;
    x
}

use Better::*;
use Unit::*;

/// Every metric, in table order.
pub static METRICS: &[Metric] = &[
    gap(m("acc_remain_train", "RA", Percent, NearRetrain)),
    gap(m("acc_forget_train", "FA", Percent, NearRetrain)),
    gap(m("acc_test", "TA", Percent, NearRetrain)),
    m("acc_test_remain", "TA remain", Percent, NearRetrain),
    m("acc_test_forget", "TA forget", Percent, NearRetrain),
    gap(m("mia_camu", "MIA", Percent, NearRetrain)),
    unreported(m(
        "mia_camu_forget_member_rate",
        "MIA Df members",
        Percent,
        NearRetrain,
    )),
    m("mia_loss", "MIA loss", Percent, NearRetrain),
    m("kl_to_retrain_forget", "KL Df", Distance, Lower),
    m("kl_to_retrain_test", "KL test", Distance, Lower),
    m("js_to_retrain_forget", "JS Df", Distance, Lower),
    m("js_to_retrain_test", "JS test", Distance, Lower),
    m("activation_distance", "act. dist.", Distance, Lower),
    run_fact(m("relearn_epochs", "relearn", Epochs, Higher)),
    run_fact(m("unlearn_time_s", "time (s)", Seconds, Lower)),
];

/// Keys of the metrics computed from a model's outputs (null when it diverged).
pub fn output_metrics() -> impl Iterator<Item = &'static str> {
    METRICS.iter().filter(|m| m.from_outputs).map(|m| m.key)
}

/// The metrics `gap_to_retrain` averages, which the bar plots draw.
pub fn gap_metrics() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(|m| m.gap)
}

/// Why a model has no gap to retrain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoGap {
    #[error("no `{0}`")]
    Missing(&'static str),
    #[error("the reference has none of the gap metrics")]
    ReferenceHasNone,
}

/// The gap to retrain, the one definition select and the report share: the mean absolute
/// difference over the gap metrics the reference has (an evaluation with `mia: false` has no
/// MIA), as a fraction; the model must have each of them.
pub fn gap_to_retrain(
    model: impl Fn(&str) -> Option<f64>,
    reference: impl Fn(&str) -> Option<f64>,
) -> Result<f64, NoGap> {
    let mut diffs = Vec::new();
    for m in gap_metrics() {
        let Some(b) = reference(m.key) else {
            continue;
        };
        let a = model(m.key).ok_or(NoGap::Missing(m.key))?;
        diffs.push((a - b).abs());
    }
    if diffs.is_empty() {
        return Err(NoGap::ReferenceHasNone);
    }
    Ok(diffs.iter().sum::<f64>() / diffs.len() as f64)
}

/// The metrics aggregated and shown in the comparison tables.
pub fn reported() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(|m| m.reported)
}

/// The per-class accuracies `evaluate` records with `per_class: true`: the key of each list of
/// accuracies (one per class, null for a class with no samples there), and its label.
pub const PER_CLASS: [(&str, &str); 3] = [
    ("acc_test_per_class", "test"),
    ("acc_forget_per_class", "forget (train)"),
    ("acc_remain_per_class", "remain (train)"),
];

/// The accuracy on each class's samples (None where a class has none).
pub fn per_class_accuracy(preds: &[i64], labels: &[i64], classes: usize) -> Vec<Option<f64>> {
    let mut hit = vec![0usize; classes];
    let mut all = vec![0usize; classes];
    for (&p, &y) in preds.iter().zip(labels) {
        if let Ok(c) = usize::try_from(y)
            && c < classes
        {
            all[c] += 1;
            hit[c] += usize::from(p == y);
        }
    }
    all.iter()
        .zip(&hit)
        .map(|(&n, &h)| (n > 0).then(|| h as f64 / n as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_the_gap_is_over_the_four_reference_metrics() {
        let mut keys: Vec<&str> = METRICS.iter().map(|m| m.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), METRICS.len());
        let gap: Vec<&str> = gap_metrics().map(|m| m.key).collect();
        assert_eq!(
            gap,
            [
                "acc_remain_train",
                "acc_forget_train",
                "acc_test",
                "mia_camu"
            ]
        );
    }

    #[test]
    fn per_class_accuracy_counts_each_class_on_its_own() {
        let labels = [0, 0, 0, 1, 1, 2];
        let preds = [0, 1, 0, 1, 1, 0];
        let acc = super::per_class_accuracy(&preds, &labels, 4);
        assert_eq!(acc, [Some(2.0 / 3.0), Some(1.0), Some(0.0), None]);
        // The overall accuracy is the class accuracies weighted by the class counts.
        let overall = (2.0 + 2.0 + 0.0) / 6.0;
        let weighted = (acc[0].unwrap() * 3.0 + acc[1].unwrap() * 2.0 + acc[2].unwrap()) / 6.0;
        assert!((overall - weighted).abs() < 1e-12);
    }
}
