//! The runs of the ML stage kinds, executed by the `camu-worker` binary. Their declarations
//! (parameters, validation, versions) are in `camu_lab::kinds`.

mod download;
mod evaluate;
mod split;
mod train;
mod unlearn;

use camu_core::stage::Runner;

/// The kinds the worker runs.
pub static RUNNERS: &[&dyn Runner] = &[
    &download::Download,
    &split::SplitKind,
    &train::Train,
    &unlearn::Unlearn,
    &evaluate::Evaluate,
];
