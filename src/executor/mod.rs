//! Executors: where a stage process runs. The engine hands each one the same self-contained
//! stage description; `local` runs it as a child process, a cluster executor would submit it.

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
    #[error("interrupted")]
    Cancelled,
}

/// Everything an executor needs to launch one stage.
pub struct Launch<'a> {
    pub stage: &'a str,
    /// The stage description (`StageJob` as JSON).
    pub job_file: &'a Path,
    /// Where stdout and stderr of the stage go.
    pub log: &'a Path,
    pub threads: usize,
    /// Device ids assigned locally (empty when the executor allocates GPUs itself).
    pub gpus: &'a [String],
    /// How many GPUs the stage asked for.
    pub gpu_count: usize,
}

pub trait Executor: Send + Sync {
    fn name(&self) -> &'static str;
    /// True when the executor's own scheduler (e.g. SLURM) enforces CPU and GPU limits, so the
    /// engine neither applies the local budget nor picks device ids.
    fn manages_resources(&self) -> bool {
        false
    }
    /// Runs the stage to completion; returns early with `Cancelled` once `cancel` is set.
    fn execute(&self, launch: &Launch<'_>, cancel: &AtomicBool) -> Result<(), ExecError>;
}

/// Makes a child process receive SIGKILL when the thread that spawned it dies, so a killed run
/// leaves no orphan stages writing into the cache.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Environment that tells libraries how many threads and which GPUs a stage owns.
pub fn resource_env(threads: usize, gpus: &[String]) -> Vec<(&'static str, String)> {
    let t = threads.to_string();
    vec![
        ("CAMU_THREADS", t.clone()),
        ("OMP_NUM_THREADS", t.clone()),
        ("MKL_NUM_THREADS", t.clone()),
        ("RAYON_NUM_THREADS", t),
        // An empty list hides every GPU from a CPU stage.
        ("CUDA_VISIBLE_DEVICES", gpus.join(",")),
        ("CAMU_GPUS", gpus.join(",")),
    ]
}
