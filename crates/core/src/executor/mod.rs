//! Executors: where a stage process runs. The engine hands each one the same self-contained
//! stage description; `local` runs it as a child process, a cluster executor would submit it.

pub mod agent;
mod local;
mod slurm;

pub use local::LocalExecutor;
pub use slurm::SlurmExecutor;

use std::path::Path;
use std::sync::atomic::AtomicBool;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start the stage process: {0}")]
    Spawn(std::io::Error),
    #[error("stage process failed: {0}")]
    Failed(String),
    /// A cluster command (sbatch, scontrol) could not run or refused.
    #[error("{program} failed: {detail}")]
    Cluster { program: String, detail: String },
    /// The attempt ran past its `resources.time` and was killed.
    #[error("time limit {0} exceeded")]
    TimeLimit(crate::spec::TimeLimit),
    #[error("interrupted")]
    Cancelled,
}

/// Everything an executor needs to launch one stage.
pub struct Launch<'a> {
    pub stage: &'a str,
    /// The binary, next to this one, that runs the stage (`None`: this binary).
    pub worker: Option<&'a str>,
    /// The stage description (`StageJob` as JSON).
    pub job_file: &'a Path,
    /// Where stdout and stderr of the stage go.
    pub log: &'a Path,
    pub threads: usize,
    /// Device ids assigned locally (empty when the executor allocates GPUs itself).
    pub gpus: &'a [String],
    /// How many GPUs the stage asked for.
    pub gpu_count: usize,
    /// Thousandths of one GPU, for a stage that asked for a fraction (`gpus: 0.25`: 250).
    pub gpu_share: Option<u32>,
    /// The attempt's wall-clock limit (`resources.time`).
    pub time: Option<crate::spec::TimeLimit>,
    /// Memory to request where the executor can (`resources.mem`; SLURM's `--mem`).
    pub mem: Option<crate::spec::Memory>,
    /// Called with a batch job's id as soon as the submission returns, to record it.
    pub submitted: &'a (dyn Fn(&str) + Sync),
}

pub trait Executor: Send + Sync {
    /// True when the executor's own scheduler (e.g. SLURM) enforces CPU and GPU limits, so the
    /// engine neither applies the local budget nor picks device ids.
    fn manages_resources(&self) -> bool {
        false
    }
    /// Runs the stage to completion; returns early with `Cancelled` once `cancel` is set.
    fn execute(&self, launch: &Launch<'_>, cancel: &AtomicBool) -> Result<(), ExecError>;
    /// True when a stage's job outlives this process (a batch system): its submission is
    /// recorded in the cache, and a later run can [`Executor::adopt`] it.
    fn detached(&self) -> bool {
        false
    }
    /// Follows a job an earlier run submitted for this launch to its end, as `execute` would
    /// have; `job` is its id, or None when the submitter died before learning it.
    fn adopt(
        &self,
        launch: &Launch<'_>,
        job: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<(), ExecError> {
        let _ = (launch, job, cancel);
        Err(ExecError::Failed("this executor cannot adopt jobs".into()))
    }
}

/// The file a batch job writes its stage process's exit status into when it ends, beside its
/// `job.json`: how a run collects a job that finished while nobody watched it.
pub fn exit_file(job_file: &Path) -> std::path::PathBuf {
    job_file.with_file_name("exit")
}

/// The program that runs a stage: `worker` next to `program`, or `program` itself.
pub fn program(program: &std::path::Path, worker: Option<&str>) -> std::path::PathBuf {
    match worker {
        Some(w) => program.with_file_name(w),
        None => program.to_path_buf(),
    }
}
