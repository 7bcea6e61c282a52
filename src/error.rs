//! The application error: every failure of a command, and the exit code of each class.

use camu_core::cache::CacheError;
use camu_core::engine::EngineError;
use camu_lab::report::ReportError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A command-line argument that cannot be used.
    #[error("{0}")]
    Usage(String),
    #[error("cannot find the camu-pipe binary: {0}")]
    Binary(#[source] std::io::Error),
    /// gc cannot tell what a registered pipeline needs, so it deletes nothing.
    #[error("{0}")]
    GcRefused(String),
    /// The stage process (`exec-stage`) failed: its stage fails.
    #[error(transparent)]
    Stage(#[from] camu_core::stage::StageError),
    /// A SLURM packing agent could not manage its directory.
    #[error("packing agent in {dir}: {source}")]
    Agent {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl AppError {
    /// 2: bad pipeline or arguments; 3: cache, report or other I/O trouble; 1: a stage failed
    /// (or, in a stage process, its stage);
    /// 130: interrupted. (0: success.)
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Usage(_) => 2,
            AppError::Engine(e) => match e {
                EngineError::Spec(_) | EngineError::Selection(_) | EngineError::Input { .. } => 2,
                EngineError::Cache(_)
                | EngineError::CacheDuringRun { .. }
                | EngineError::LockFile { .. } => 3,
                EngineError::StagesFailed { .. } => 1,
                EngineError::Interrupted => 130,
            },
            AppError::Stage(_) => 1,
            AppError::Cache(_)
            | AppError::Report(_)
            | AppError::Binary(_)
            | AppError::GcRefused(_)
            | AppError::Agent { .. } => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let interrupted = AppError::from(EngineError::Interrupted);
        let failed = AppError::from(EngineError::StagesFailed {
            failed: 1,
            names: "a".into(),
        });
        let usage = AppError::Usage("x".into());
        let report = AppError::from(ReportError {
            path: "r".into(),
            source: std::io::Error::other("full"),
        });
        let codes: Vec<u8> = [interrupted, failed, usage, report]
            .iter()
            .map(AppError::exit_code)
            .collect();
        assert_eq!(codes, [130, 1, 2, 3]);
    }
}
