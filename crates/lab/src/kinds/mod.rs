//! The experiment's stage kinds as the planner sees them: parameters, validation, versions. The
//! ML kinds run in the `camu-worker` binary (camu-torch); `compare` runs here, without libtorch.

pub mod audit;
pub mod compare;
pub mod download;
pub mod evaluate;
pub mod select;
pub mod split;
pub mod train;
pub mod unlearn;

use camu_core::spec::{Kind, Registry};
use camu_core::stage::Runner;

/// The binary that runs the ML kinds' stage processes (it links libtorch; `camu-pipe` does not).
pub const WORKER: &str = "camu-worker";

/// Whether an input with `metrics` from a stage of `kind` is an evaluation: an `evaluate` stage,
/// or a command stage whose metrics are an evaluation's (an external tool's, with a test
/// accuracy).
pub fn is_evaluation(kind: &str, metrics: &serde_json::Map<String, serde_json::Value>) -> bool {
    kind == "evaluate" || (kind == "command" && metrics.contains_key("acc_test"))
}

/// Every kind a pipeline may use: `command` and the experiment's kinds.
pub fn registry() -> Registry {
    Registry::core().with([
        &download::Download as &dyn Kind,
        &split::SplitKind,
        &train::Train,
        &unlearn::Unlearn,
        &evaluate::Evaluate,
        &compare::Compare,
        &select::Select,
        &audit::Audit,
    ])
}

/// The kinds `camu-pipe exec-stage` runs itself.
pub static RUNNERS: &[&dyn Runner] = &[
    &camu_core::stage::command::CommandRun,
    &compare::Compare,
    &select::Select,
];
