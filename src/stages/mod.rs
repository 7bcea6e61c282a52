//! Stage kinds. Each kind validates its parameters at load time and runs inside its own stage
//! process (`camu-pipe exec-stage JOB.json`), so a crash or out-of-memory fails that stage only.

mod command;
mod compare;
mod download;
mod evaluate;
mod ml_common;
mod split;
mod train;
mod unlearn;

pub use command::describe_status;

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

/// A stage kind: a built-in step of the experiment, or `command`.
pub trait Kind: Sync {
    fn name(&self) -> &'static str;
    /// Bump when a change to the code changes the kind's results: it is part of every key.
    fn version(&self) -> u32;
    /// The version that goes into the key; kinds that dispatch on a parameter (e.g. `unlearn`'s
    /// method) fold the version of what they dispatch to into it.
    fn key_version(&self, _params: &Map<String, Value>) -> u32 {
        self.version()
    }
    fn is_command(&self) -> bool {
        false
    }
    /// Checks `with` before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String>;
    /// Runs the stage in the stage process. Outputs go to `job.out_dir`; a `metrics.json` there
    /// becomes the record's metrics.
    fn run(&self, job: &StageJob) -> Result<(), String>;
}

static KINDS: &[&dyn Kind] = &[
    &command::Command,
    &download::Download,
    &split::SplitKind,
    &train::Train,
    &unlearn::Unlearn,
    &evaluate::Evaluate,
    &compare::Compare,
];

pub fn lookup(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// Entry point of the stage process.
pub fn exec_job(job_file: &Path) -> Result<(), String> {
    let bytes = std::fs::read(job_file)
        .map_err(|e| format!("cannot read stage description {}: {e}", job_file.display()))?;
    let job: StageJob = serde_json::from_slice(&bytes)
        .map_err(|e| format!("bad stage description {}: {e}", job_file.display()))?;
    let kind = lookup(&job.kind).ok_or_else(|| format!("unknown kind `{}`", job.kind))?;
    tracing::info!(stage = %job.stage, kind = %job.kind, threads = job.threads, gpus = ?job.gpus, "stage started");
    kind.run(&job)
}
