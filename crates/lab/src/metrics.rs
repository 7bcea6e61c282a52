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

/// The metrics aggregated and shown in the comparison tables.
pub fn reported() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(|m| m.reported)
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
}
