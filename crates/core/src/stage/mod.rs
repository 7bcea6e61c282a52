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
    /// The upstream stages' outputs, by expanded stage name.
    pub inputs: BTreeMap<String, Input>,
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

/// An upstream stage's output as a stage sees it: where it is and what produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// The output directory.
    pub dir: PathBuf,
    /// The declared stage it was expanded from (its name without matrix bindings).
    pub base: String,
    /// Its kind.
    pub kind: String,
    /// Its matrix bindings (empty for a stage without a matrix).
    #[serde(default)]
    pub bindings: IndexMap<String, Value>,
}

impl StageJob {
    /// The inputs `name` refers to: the input of that expanded name, else every instance of the
    /// declared stage `name`.
    pub fn inputs_named(&self, name: &str) -> Vec<(&String, &Input)> {
        match self.inputs.get_key_value(name) {
            Some(exact) => vec![exact],
            None => self.inputs.iter().filter(|(_, i)| i.base == name).collect(),
        }
    }

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
                // `${in.train}` also finds `train@dataset=x` when that is the only match.
                let stage = name.strip_prefix("in.")?;
                match self.inputs_named(stage).as_slice() {
                    [(_, input)] => Some(path(&input.dir)),
                    _ => None,
                }
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
    #[error(transparent)]
    Input(#[from] io::InputError),
    #[error("a `command` stage needs a `run` command")]
    NoCommand,
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
    /// The kind's own error, in its own type.
    #[error(transparent)]
    Kind(Box<dyn std::error::Error + Send + Sync + 'static>),
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
