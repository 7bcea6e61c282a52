//! The packing agent: one SLURM job that holds one GPU and runs the fractional-GPU stages placed
//! in its inbox, as many at once as their shares fit in the device (`gpus: 0.25`: four). SLURM
//! has no fractions of a GPU without MPS or sharding; the agent keeps the packing that the local
//! scheduler gives such stages.
//!
//! Protocol, all through files in the agent's directory (on the filesystem the nodes share):
//! - the submitting run writes `inbox/NAME.json` (a [`Placement`]) atomically;
//! - the agent starts `PROGRAM exec-stage JOB_FILE` with the stage's log as stdout and stderr,
//!   and when it ends writes its exit status to the `exit` file beside the job file (as a
//!   single-stage job's script does), then deletes the placement;
//! - after `idle` seconds with nothing running and nothing placed (or once the run has written
//!   `stop`), it renames `inbox` to `closed` (from then on a placement fails, and the run starts
//!   another agent), runs whatever was placed just before, removes its directory and exits.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One stage placed in an agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    pub program: PathBuf,
    pub job_file: PathBuf,
    pub log: PathBuf,
    pub threads: usize,
    /// Thousandths of the GPU.
    pub share: u32,
    /// The stage's time limit in seconds: past it the agent kills the stage, whose exit status
    /// is then [`TIMED_OUT`].
    pub time_s: Option<u64>,
}

/// The exit status the agent records for a stage it stopped at its time limit (as `timeout`).
pub const TIMED_OUT: i32 = 124;

/// The file beside a placed stage's job file that asks the agent to stop it.
pub fn cancel_file(job_file: &Path) -> PathBuf {
    job_file.with_file_name("cancel")
}

/// Places a stage in an agent's inbox; an error when the agent has closed it. Written into a
/// temporary file in the inbox and renamed there, never creating the inbox: a placement that
/// succeeds is either in the inbox or, if the agent closed it just after, among the closed
/// ones it still runs.
pub fn place(dir: &Path, name: &str, p: &Placement) -> std::io::Result<()> {
    use std::io::Write;
    let inbox = dir.join("inbox");
    let bytes = serde_json::to_vec(p).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::Builder::new()
        .suffix(".tmp")
        .tempfile_in(&inbox)?;
    tmp.write_all(&bytes)?;
    tmp.persist(inbox.join(format!("{name}.json")))
        .map_err(|e| e.error)?;
    Ok(())
}

struct Running {
    child: Child,
    exit: PathBuf,
    placed: PathBuf,
    share: u32,
    job_file: PathBuf,
    deadline: Option<Instant>,
    timed_out: bool,
}

fn start(placed: &Path, p: &Placement) -> std::io::Result<Child> {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&p.log)?;
    let mut cmd = Command::new(&p.program);
    cmd.arg("exec-stage")
        .arg(&p.job_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
    // The GPU SLURM gave the agent is every stage's; only the thread counts differ.
    for (k, v) in crate::process::resource_env(p.threads, &[]) {
        if !k.contains("CUDA") && !k.contains("GPUS") {
            cmd.env(k, v);
        }
    }
    tracing::info!(placed = %placed.display(), "starting a packed stage");
    cmd.spawn()
}

fn pending(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

/// Runs the agent in `dir` until it has been idle for `idle`.
pub fn run(dir: &Path, idle: Duration) -> std::io::Result<()> {
    let inbox = dir.join("inbox");
    let closed = dir.join("closed");
    let mut running: HashMap<PathBuf, Running> = HashMap::new();
    let mut idle_since = Instant::now();
    let mut closing = false;
    loop {
        // Stop what is past its time or cancelled by its run.
        for r in running.values_mut() {
            let late = r.deadline.is_some_and(|d| Instant::now() >= d);
            if late && !r.timed_out {
                r.timed_out = true;
                let _ = r.child.kill();
            } else if cancel_file(&r.job_file).exists() {
                let _ = r.child.kill();
            }
        }
        // Reap finished stages: their exit status goes beside their job file.
        let done: Vec<PathBuf> = running
            .iter_mut()
            .filter_map(|(k, r)| matches!(r.child.try_wait(), Ok(Some(_))).then(|| k.clone()))
            .collect();
        for k in done {
            let mut r = running.remove(&k).expect("listed");
            let status = r.child.wait().ok().and_then(|s| s.code());
            let code = if r.timed_out {
                TIMED_OUT
            } else {
                status.unwrap_or(1)
            };
            crate::cache::write_atomic(&r.exit, format!("{code}\n").as_bytes())?;
            let _ = std::fs::remove_file(&r.placed);
        }
        let used: u32 = running.values().map(|r| r.share).sum();
        let source = if closing { &closed } else { &inbox };
        let mut free = crate::spec::Gpus::WHOLE.saturating_sub(used);
        let mut waiting = 0;
        for placed in pending(source) {
            if running.contains_key(&placed) {
                continue;
            }
            let Ok(p) = std::fs::read(&placed)
                .map_err(std::io::Error::other)
                .and_then(|b| {
                    serde_json::from_slice::<Placement>(&b).map_err(std::io::Error::other)
                })
            else {
                continue;
            };
            if p.share > free {
                waiting += 1;
                continue;
            }
            let exit = super::exit_file(&p.job_file);
            match start(&placed, &p) {
                Ok(child) => {
                    free -= p.share;
                    running.insert(
                        placed.clone(),
                        Running {
                            child,
                            exit,
                            placed,
                            share: p.share,
                            job_file: p.job_file.clone(),
                            deadline: p.time_s.map(|t| Instant::now() + Duration::from_secs(t)),
                            timed_out: false,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!("cannot start {}: {e}", p.job_file.display());
                    crate::cache::write_atomic(&exit, b"127\n")?;
                    let _ = std::fs::remove_file(&placed);
                }
            }
        }
        if !running.is_empty() || waiting > 0 {
            idle_since = Instant::now();
        } else if closing {
            // Nothing refers to the directory any more (runs place only into `inbox`).
            let _ = std::fs::remove_dir_all(dir);
            return Ok(());
        } else if idle_since.elapsed() >= idle || dir.join("stop").exists() {
            // From here a placement fails; what was placed before the rename still runs.
            std::fs::rename(&inbox, &closed)?;
            closing = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn runs_what_fits_in_the_gpu_records_exits_and_stops_stages_past_their_time() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let agent_dir = root.join("agent");
        let dir = agent_dir.as_path();
        std::fs::create_dir_all(dir.join("inbox")).unwrap();
        // The "stage program": runs its job file as a shell script.
        let prog = root.join("prog");
        std::fs::write(&prog, "#!/bin/sh\nsh \"$2\"\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stage = |name: &str, script: &str, share: u32, time_s: Option<u64>| {
            let sdir = root.join(name);
            std::fs::create_dir(&sdir).unwrap();
            let job_file = sdir.join("job.json");
            std::fs::write(&job_file, script).unwrap();
            let p = Placement {
                program: prog.clone(),
                job_file: job_file.clone(),
                log: sdir.join("log"),
                threads: 1,
                share,
                time_s,
            };
            place(dir, name, &p).unwrap();
            job_file
        };
        let spans = root.join("spans");
        let span = |n: &str| {
            format!(
                "echo \"{n} $(date +%s.%N) start\" >> {s}; sleep 1; echo \"{n} $(date +%s.%N) end\" >> {s}",
                s = spans.display()
            )
        };
        let a = stage("a", &span("a"), 500, None);
        let b = stage("b", &span("b"), 500, None);
        let c = stage("c", &format!("{}; exit 3", span("c")), 500, None);
        let slow = stage("slow", "sleep 30", 250, Some(1));
        std::fs::write(dir.join("stop"), b"").unwrap();
        let started = Instant::now();
        run(dir, Duration::from_secs(60)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(20));
        let exit = |j: &Path| std::fs::read_to_string(super::super::exit_file(j)).unwrap();
        assert_eq!(exit(&a).trim(), "0");
        assert_eq!(exit(&b).trim(), "0");
        assert_eq!(exit(&c).trim(), "3");
        assert_eq!(exit(&slow).trim(), TIMED_OUT.to_string());
        // Never more than two halves at once: c started after a or b ended.
        let lines = std::fs::read_to_string(&spans).unwrap();
        let t = |n: &str, what: &str| -> f64 {
            lines
                .lines()
                .find(|l| l.starts_with(n) && l.ends_with(what))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(
            t("c", "start") >= t("a", "end").min(t("b", "end")),
            "{lines}"
        );
        // Gone when done: a later placement is refused.
        assert!(!dir.join("inbox").exists() && !dir.join("closed").exists());
        let late = Placement {
            program: prog.clone(),
            job_file: a.clone(),
            log: root.join("late.log"),
            threads: 1,
            share: 1,
            time_s: None,
        };
        assert!(place(dir, "late", &late).is_err());
    }
}
