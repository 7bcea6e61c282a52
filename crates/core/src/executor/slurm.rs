//! Runs each stage as a SLURM batch job: `sbatch --wrap "camu-pipe exec-stage JOB.json"` with the
//! stage's CPUs and GPUs as the job's request. camu-pipe keeps the DAG itself and submits a stage
//! when its inputs are ready, so a failed parent never leaves dependents pending forever (as
//! `--dependency=afterok` would). The cache directory must be on a filesystem the nodes share.

use super::{ExecError, Executor, Launch};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct SlurmExecutor {
    /// The camu-pipe binary the nodes run (same path on every node).
    pub program: PathBuf,
    pub partition: Option<String>,
    /// Extra sbatch arguments, e.g. `--account=lab --time=04:00:00`.
    pub extra: Vec<String>,
    pub poll: Duration,
}

/// Job states after which a job will not run again.
fn finished(state: &str) -> bool {
    !matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "REQUEUED"
            | "RESIZING"
            | "SUSPENDED"
            | ""
    )
}

fn run(cmd: &mut Command) -> Result<String, ExecError> {
    let program = cmd.get_program().to_string_lossy().to_string();
    let out = cmd.output().map_err(|e| ExecError::Cluster {
        program: program.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ExecError::Cluster {
            program,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `KEY=VALUE` from `scontrol show job` output.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

impl SlurmExecutor {
    /// The sbatch command line for one stage.
    pub fn sbatch_args(&self, l: &Launch<'_>) -> Vec<String> {
        let mut a = vec![
            "--parsable".to_string(),
            format!(
                "--job-name=camu-{}",
                l.stage.chars().take(60).collect::<String>()
            ),
            format!("--output={}", l.log.display()),
            "--open-mode=append".into(),
            format!("--cpus-per-task={}", l.threads.max(1)),
            // The node's environment plus the thread settings; SLURM sets CUDA_VISIBLE_DEVICES.
            format!(
                "--export=ALL,CAMU_THREADS={t},OMP_NUM_THREADS={t},MKL_NUM_THREADS={t},RAYON_NUM_THREADS={t}",
                t = l.threads.max(1)
            ),
        ];
        if l.gpu_count > 0 {
            a.push(format!("--gres=gpu:{}", l.gpu_count));
        }
        if let Some(p) = &self.partition {
            a.push(format!("--partition={p}"));
        }
        a.extend(self.extra.iter().cloned());
        a.push(format!(
            "--wrap={} exec-stage {}",
            shell_quote(
                &super::program(&self.program, l.worker)
                    .display()
                    .to_string()
            ),
            shell_quote(&l.job_file.display().to_string())
        ));
        a
    }

    /// (state, exit code) of a job, from scontrol (sacct needs an accounting daemon).
    fn state(&self, id: &str) -> Result<(String, String), ExecError> {
        let text = run(Command::new("scontrol").args(["show", "job", id]))?;
        let state = field(&text, "JobState").unwrap_or("").to_string();
        let code = field(&text, "ExitCode").unwrap_or("").to_string();
        Ok((state, code))
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Executor for SlurmExecutor {
    fn manages_resources(&self) -> bool {
        true
    }

    fn execute(&self, l: &Launch<'_>, cancel: &AtomicBool) -> Result<(), ExecError> {
        let out = run(Command::new("sbatch").args(self.sbatch_args(l)))?;
        // --parsable prints "ID" or "ID;cluster".
        let id = out.split(';').next().unwrap_or_default().trim().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ExecError::Failed(format!(
                "sbatch printed no job id: {out:?}"
            )));
        }
        tracing::info!(stage = l.stage, job = %id, "submitted to SLURM");
        loop {
            if cancel.load(Ordering::Relaxed) {
                let _ = Command::new("scancel").arg(&id).status();
                return Err(ExecError::Cancelled);
            }
            match self.state(&id) {
                Ok((state, code)) if finished(&state) => {
                    return if state == "COMPLETED" && code.starts_with("0:") {
                        Ok(())
                    } else {
                        Err(ExecError::Failed(format!(
                            "SLURM job {id} ended {state} (exit code {code})"
                        )))
                    };
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("polling SLURM job {id}: {e}"),
            }
            std::thread::sleep(self.poll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sbatch_request_matches_the_stage() {
        let ex = SlurmExecutor {
            program: PathBuf::from("/opt/camu pipe/camu-pipe"),
            partition: Some("gpu".into()),
            extra: vec!["--time=01:00:00".into()],
            poll: Duration::from_secs(1),
        };
        let args = ex.sbatch_args(&Launch {
            stage: "train@dataset=mnist",
            worker: Some("camu-worker"),
            job_file: Path::new("/c/tmp/k.1/job.json"),
            log: Path::new("/c/logs/k.log"),
            threads: 4,
            gpus: &[],
            gpu_count: 2,
        });
        assert!(args.contains(&"--cpus-per-task=4".to_string()));
        assert!(args.contains(&"--gres=gpu:2".to_string()));
        assert!(args.contains(&"--partition=gpu".to_string()));
        assert!(args.contains(&"--output=/c/logs/k.log".to_string()));
        assert_eq!(
            args.last().unwrap(),
            "--wrap='/opt/camu pipe/camu-worker' exec-stage '/c/tmp/k.1/job.json'"
        );
    }

    #[test]
    fn parses_scontrol_fields() {
        let text = "JobId=12 JobName=x\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=1:0";
        assert_eq!(field(text, "JobState"), Some("FAILED"));
        assert_eq!(field(text, "ExitCode"), Some("1:0"));
        assert!(finished("FAILED") && finished("COMPLETED") && !finished("PENDING"));
    }
}
