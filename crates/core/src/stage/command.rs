//! `command`: runs any external program, cached like a built-in stage. Its declared input files
//! are hashed into the key; upstream outputs arrive as `${in.STAGE}` and `CAMU_IN_STAGE`.

use super::{Runner, StageError, StageJob};
use crate::process::{describe_status, die_with_parent};
use crate::spec::{CommandLine, interp};
use serde_json::Value;
use std::path::Path;

/// Runs `command` stages.
pub struct CommandRun;

/// `train@dataset=mnist` -> `TRAIN_DATASET_MNIST`, for environment variable names.
pub fn env_name(stage: &str) -> String {
    stage
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl Runner for CommandRun {
    fn kind(&self) -> &'static str {
        "command"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let fill = |s: &str| interp::fill_runtime(s, &|n| job.placeholder(n));
        let mut cmd = match job.command.as_ref().ok_or(StageError::NoCommand)? {
            CommandLine::Shell(s) => {
                // Strict mode, as Snakemake runs shell commands: the first failing command, an
                // unset variable or a failing stage of a pipe fails the stage.
                let bash = Path::new("/bin/bash").exists();
                let mut c = std::process::Command::new(if bash { "/bin/bash" } else { "sh" });
                c.args(if bash {
                    &["-euo", "pipefail"][..]
                } else {
                    &["-eu"]
                })
                .arg("-c")
                .arg(fill(s)?);
                c
            }
            CommandLine::Argv(v) => {
                let argv: Vec<String> = v.iter().map(|a| fill(a)).collect::<Result<_, _>>()?;
                let mut c = std::process::Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.current_dir(&job.workdir)
            .env("CAMU_OUT", &job.out_dir)
            .env("CAMU_STAGE", &job.stage)
            .env("CAMU_THREADS", job.threads.to_string())
            .env("CAMU_PARAMS", Value::Object(job.params.clone()).to_string());
        for (name, input) in &job.inputs {
            cmd.env(format!("CAMU_IN_{}", env_name(name)), &input.dir);
        }
        for (k, v) in &job.env {
            cmd.env(k, fill(v)?);
        }
        die_with_parent(&mut cmd, libc::SIGKILL);
        let status = cmd.status().map_err(StageError::Spawn)?;
        if status.success() {
            Ok(())
        } else {
            Err(StageError::CommandFailed(describe_status(status)))
        }
    }
}
