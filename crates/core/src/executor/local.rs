//! Runs each stage as a child process of this machine.

use super::{ExecError, Executor, Launch};
use crate::process::{describe_status, die_with_parent, resource_env};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct LocalExecutor {
    /// The camu-pipe binary that runs `exec-stage`.
    pub program: PathBuf,
}

impl Executor for LocalExecutor {
    fn execute(&self, l: &Launch<'_>, cancel: &AtomicBool) -> Result<(), ExecError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(l.log)
            .map_err(ExecError::Spawn)?;
        let log2 = log.try_clone().map_err(ExecError::Spawn)?;
        let mut cmd = Command::new(super::program(&self.program, l.worker));
        cmd.arg("exec-stage")
            .arg(l.job_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Own process group: Ctrl-C at the terminal reaches only us; we stop children ourselves.
            .process_group(0)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        for (k, v) in resource_env(l.threads, l.gpus) {
            cmd.env(k, v);
        }
        // SIGTERM, not SIGKILL: the stage process then takes its whole group down.
        die_with_parent(&mut cmd, libc::SIGTERM);
        let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
        let pgid = child.id() as i32;
        let exited = crate::process::ExitWatch::new(&child);
        let started = Instant::now();
        let mut term_sent: Option<Instant> = None;
        let mut timed_out = false;
        loop {
            match child.try_wait().map_err(ExecError::Spawn)? {
                Some(_) if timed_out => {
                    return Err(ExecError::TimeLimit(l.time.expect("set when timed out")));
                }
                Some(status) if status.success() => return Ok(()),
                Some(_) if term_sent.is_some() => return Err(ExecError::Cancelled),
                Some(status) => {
                    return Err(ExecError::Failed(describe_status(status)));
                }
                None => {}
            }
            if !timed_out
                && let Some(t) = l.time
                && started.elapsed() >= Duration::from_secs(t.secs())
            {
                // Past its time: the whole process group goes, as on a cancel.
                timed_out = true;
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(l.log)
                    .and_then(|mut f| {
                        use std::io::Write;
                        writeln!(
                            f,
                            "[camu-pipe: time limit {t} exceeded; stopping the stage]"
                        )
                    });
            }
            if cancel.load(Ordering::Relaxed) || timed_out {
                match term_sent {
                    None => {
                        // SAFETY: signalling our own child's process group.
                        unsafe { libc::kill(-pgid, libc::SIGTERM) };
                        term_sent = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(10) => {
                        unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    }
                    _ => {}
                }
            }
            // Wakes as soon as the child exits; the timeout bounds how late a cancel is seen.
            exited.wait(Duration::from_millis(50));
        }
    }
}
