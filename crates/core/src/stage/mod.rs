//! The stage process: the self-contained job description it runs from, and the runners that
//! execute a kind inside it (`camu-pipe exec-stage JOB.json`, or a worker binary's), so a crash
//! or out-of-memory fails that stage only.

pub mod command;
pub mod io;

use crate::params::ParamError;

use crate::spec::CommandLine;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The self-contained description a stage process runs from. The same file is what a remote
/// executor (SLURM) submits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageJob {
    pub stage: String,
    pub kind: String,
    pub key: String,
    pub params: Map<String, Value>,
    #[serde(default)]
    pub command: Option<CommandLine>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Output directories of upstream stages, by stage name.
    pub inputs: BTreeMap<String, PathBuf>,
    /// Where the stage writes its outputs (a staging directory the engine publishes).
    pub out_dir: PathBuf,
    /// The pipeline file's directory; relative paths resolve against it.
    pub workdir: PathBuf,
    /// The dataset store.
    pub data_dir: PathBuf,
    /// CPU threads this stage may use.
    pub threads: usize,
    /// Device ids of the GPUs this stage was given (empty: CPU only).
    pub gpus: Vec<String>,
    /// The share of its one GPU a fractional stage holds (`resources: {gpus: 0.25}`).
    #[serde(default)]
    pub gpu_share: Option<f64>,
    /// The Python interpreter of a stage that runs Python (`python:`; unset: the runner's default).
    #[serde(default)]
    pub python: Option<String>,
    /// The content hashes of the input files the key was computed with (relative path -> hash),
    /// so a runner can refuse files that changed after the run planned the stage.
    #[serde(default)]
    pub input_hashes: BTreeMap<String, String>,
}

impl StageJob {
    /// Looks up a run-time placeholder (`${out}`, `${in.X}`, …).
    pub fn placeholder(&self, name: &str) -> Option<String> {
        let path = |p: &Path| p.display().to_string();
        match name {
            "out" => Some(path(&self.out_dir)),
            "workdir" => Some(path(&self.workdir)),
            "data" => Some(path(&self.data_dir)),
            "threads" => Some(self.threads.to_string()),
            "gpus" => Some(self.gpus.join(",")),
            _ => {
                let stage = name.strip_prefix("in.")?;
                self.inputs
                    .get(stage)
                    .or_else(|| {
                        // `${in.train}` also finds `train@dataset=x` when that is the only match.
                        let mut m = self
                            .inputs
                            .iter()
                            .filter(|(k, _)| k.split('@').next() == Some(stage));
                        let first = m.next().map(|(_, v)| v);
                        if m.next().is_some() { None } else { first }
                    })
                    .map(|p| path(p))
            }
        }
    }
}

/// Why a stage process failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot read stage description {path}: {source}")]
    ReadJob {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad stage description {path}: {source}")]
    BadJob {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("this program does not run kind `{0}`")]
    NoRunner(String),
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(transparent)]
    Placeholder(#[from] crate::spec::interp::InterpError),
    /// An upstream output the stage needs is missing or ambiguous.
    #[error("{0}")]
    Input(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot start command: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("command failed: {0}")]
    CommandFailed(String),
    /// The kind's own account of what went wrong.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for StageError {
    fn from(s: String) -> Self {
        StageError::Failed(s)
    }
}

impl From<&str> for StageError {
    fn from(s: &str) -> Self {
        StageError::Failed(s.to_string())
    }
}

/// Code that reports failures as text takes a stage error as its message.
impl From<StageError> for String {
    fn from(e: StageError) -> Self {
        e.to_string()
    }
}

/// Runs one kind's stage inside the stage process. Outputs go to `job.out_dir`; a
/// `metrics.json` there becomes the record's metrics.
pub trait Runner: Sync {
    fn kind(&self) -> &'static str;
    fn run(&self, job: &StageJob) -> Result<(), StageError>;
}

/// Entry point of the stage process.
pub fn exec_job(job_file: &Path, runners: &[&dyn Runner]) -> Result<(), StageError> {
    crate::process::take_group_down_on_term();
    let path = job_file.to_path_buf();
    let bytes = std::fs::read(job_file).map_err(|source| StageError::ReadJob {
        path: path.clone(),
        source,
    })?;
    let job: StageJob =
        serde_json::from_slice(&bytes).map_err(|source| StageError::BadJob { path, source })?;
    let runner = runners
        .iter()
        .find(|r| r.kind() == job.kind)
        .ok_or_else(|| StageError::NoRunner(job.kind.clone()))?;
    tracing::info!(stage = %job.stage, kind = %job.kind, threads = job.threads, gpus = ?job.gpus, "stage started");
    crate::process::become_subreaper();
    let result = runner.run(&job);
    // Nothing the stage started outlives it: its outputs are hashed once this process exits.
    let left = crate::process::reap_descendants();
    if left > 0 {
        tracing::warn!(
            "the stage left {left} process(es) running; they were killed before its outputs were recorded"
        );
    }
    result
}
