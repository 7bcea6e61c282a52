//! Runs each stage as a SLURM batch job: `sbatch --wrap "camu-pipe exec-stage JOB.json"` with the
//! stage's CPUs and GPUs as the job's request. camu-pipe keeps the DAG itself and submits a stage
//! when its inputs are ready, so a failed parent never leaves dependents pending forever (as
//! `--dependency=afterok` would). The cache directory must be on a filesystem the nodes share.
//!
//! Load on the controller stays flat in the number of jobs: one `squeue` call per poll answers
//! for every job of the run (a job it no longer lists is looked up once with `scontrol`), and
//! submissions are spaced by a rate limit.

use super::{ExecError, Executor, Launch, agent};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct SlurmExecutor {
    /// The camu-pipe binary the nodes run (same path on every node).
    pub program: PathBuf,
    pub partition: Option<String>,
    /// Extra sbatch arguments, e.g. `--account=lab --time=04:00:00`.
    pub extra: Vec<String>,
    /// Time between two status queries (each one call for all jobs).
    pub poll: Duration,
    /// Least time between two submissions.
    pub submit_interval: Duration,
    /// CPUs a packing agent requests (None: the first stage's threads times the stages of its
    /// share that fit in one GPU).
    pub agent_cpus: Option<usize>,
    /// How long an agent with nothing to run waits for more before it ends.
    pub agent_idle: Duration,
    monitor: Arc<Monitor>,
    agents: Mutex<Vec<AgentSlot>>,
    /// This user's jobs by comment (job file), from one `squeue` call: the interrupted
    /// submissions a new run adopts are looked up in it together.
    by_comment: Mutex<Option<HashMap<String, String>>>,
}

/// A packing agent this run submitted: its directory, job and the GPU share placed in it.
struct AgentSlot {
    dir: PathBuf,
    job: String,
    load: u32,
    open: bool,
}

/// The jobs being watched and their last known states, shared by the stage threads and the
/// one poller thread.
#[derive(Default)]
struct Monitor {
    state: Mutex<Watch>,
    changed: Condvar,
}

#[derive(Default)]
struct Watch {
    /// Job id -> its last state ("" until the first poll sees it).
    jobs: HashMap<String, String>,
    polling: bool,
    last_submit: Option<Instant>,
}

impl SlurmExecutor {
    pub fn new(
        program: PathBuf,
        partition: Option<String>,
        extra: Vec<String>,
        poll: Duration,
        submit_interval: Duration,
    ) -> SlurmExecutor {
        SlurmExecutor {
            program,
            partition,
            extra,
            poll,
            submit_interval,
            agent_cpus: None,
            agent_idle: Duration::from_secs(30),
            monitor: Arc::default(),
            agents: Mutex::default(),
            by_comment: Mutex::default(),
        }
    }

    /// An agent with room for `share`, submitting a new one where none has; its share is
    /// taken. Returns its directory and job id.
    fn agent_with_room(&self, l: &Launch<'_>, share: u32) -> Result<(PathBuf, String), ExecError> {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        for a in agents.iter_mut().filter(|a| a.open) {
            let alive = self.monitor.peek(&a.job).is_none_or(|s| !finished(&s));
            if alive && a.load + share <= crate::spec::Gpus::WHOLE {
                a.load += share;
                return Ok((a.dir.clone(), a.job.clone()));
            }
            a.open &= alive;
        }
        // Beside the stages' staging directories (the cache's tmp/, on the shared filesystem).
        let tmp = l
            .job_file
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| ExecError::Failed("the job file has no staging directory".into()))?;
        let dir = tmp.join(format!("agent-{}-{}", std::process::id(), agents.len()));
        std::fs::create_dir_all(dir.join("inbox")).map_err(ExecError::Spawn)?;
        let slots = (crate::spec::Gpus::WHOLE / share.max(1)).max(1) as usize;
        let cpus = self.agent_cpus.unwrap_or(l.threads.max(1) * slots);
        let mut a = vec![
            "--parsable".to_string(),
            "--job-name=camu-agent".into(),
            format!("--output={}", dir.join("agent.log").display()),
            format!("--cpus-per-task={cpus}"),
            "--gres=gpu:1".into(),
        ];
        if let Some(p) = &self.partition {
            a.push(format!("--partition={p}"));
        }
        a.extend(self.extra.iter().cloned());
        a.push(format!(
            "--wrap={} slurm-agent {} --idle {}",
            shell_quote(&self.program.display().to_string()),
            shell_quote(&dir.display().to_string()),
            self.agent_idle.as_secs_f64()
        ));
        self.monitor.pace(self.submit_interval);
        let out = run(Command::new("sbatch").args(a))?;
        let job = out.split(';').next().unwrap_or_default().trim().to_string();
        tracing::info!(job = %job, dir = %dir.display(), "submitted a packing agent");
        self.monitor.watch(&job, self.poll);
        agents.push(AgentSlot {
            dir: dir.clone(),
            job: job.clone(),
            load: share,
            open: true,
        });
        Ok((dir, job))
    }

    /// Gives an agent's share back; `close` when the agent refused the placement.
    fn release(&self, dir: &Path, share: u32, close: bool) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = agents.iter_mut().find(|a| a.dir == dir) {
            a.load = a.load.saturating_sub(share);
            a.open &= !close;
        }
    }

    /// Runs a fractional-GPU stage in a packing agent (see `agent`).
    fn execute_packed(
        &self,
        l: &Launch<'_>,
        share: u32,
        cancel: &AtomicBool,
    ) -> Result<(), ExecError> {
        let placement = agent::Placement {
            program: super::program(&self.program, l.worker),
            job_file: l.job_file.to_path_buf(),
            log: l.log.to_path_buf(),
            threads: l.threads,
            share,
            time_s: l.time.map(|t| t.secs()),
        };
        let name = l
            .job_file
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "stage".into());
        let (dir, job) = loop {
            let (dir, job) = self.agent_with_room(l, share)?;
            // Recorded before the placement: a run killed in between leaves a record that a
            // new run follows (and finds unplaced, a failure), never an unrecorded placement
            // that it would place again.
            (l.submitted)(&job);
            match agent::place(&dir, &name, &placement) {
                Ok(()) => break (dir, job),
                // Closed since: the next agent takes it.
                Err(_) => self.release(&dir, share, true),
            }
        };
        tracing::info!(stage = l.stage, agent = %job, "placed in a packing agent");
        let r = self.wait_packed(l, &job, cancel);
        self.release(&dir, share, false);
        r
    }

    /// Waits for a packed stage's exit status, or for its agent's end.
    fn wait_packed(
        &self,
        l: &Launch<'_>,
        agent_job: &str,
        cancel: &AtomicBool,
    ) -> Result<(), ExecError> {
        self.monitor.watch(agent_job, self.poll);
        loop {
            if let Some(code) = exit_status(l) {
                return match code {
                    0 => Ok(()),
                    agent::TIMED_OUT if l.time.is_some() => {
                        Err(ExecError::TimeLimit(l.time.expect("checked")))
                    }
                    c => Err(ExecError::Failed(format!(
                        "exit status {c} (in packing agent job {agent_job})"
                    ))),
                };
            }
            if cancel.load(Ordering::Relaxed) {
                let _ = std::fs::write(agent::cancel_file(l.job_file), b"");
                return Err(ExecError::Cancelled);
            }
            if let Some(state) = self.monitor.peek(agent_job).filter(|s| finished(s)) {
                // It may have written the status just before it ended.
                if exit_status(l).is_none() {
                    return Err(ExecError::Failed(format!(
                        "packing agent job {agent_job} ended {state} before the stage finished"
                    )));
                }
                continue;
            }
            std::thread::sleep(self.poll.min(Duration::from_millis(500)));
        }
    }
}

impl Drop for SlurmExecutor {
    /// The run is over: its agents end as soon as they have nothing left to run.
    fn drop(&mut self) {
        let agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        for a in agents.iter() {
            let _ = std::fs::write(a.dir.join("stop"), b"");
        }
    }
}

/// `squeue` lines "ID STATE" for this user's jobs (finished ones too, while SLURM keeps them).
fn parse_squeue(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect()
}

/// One poll: every watched job's state from one `squeue`; jobs it does not list (gone from
/// its view) from `scontrol`, one each, or "UNKNOWN" when SLURM has forgotten them.
fn poll_once(ids: &HashSet<String>) -> HashMap<String, String> {
    let mut seen = match run(Command::new("squeue").args([
        "--me",
        "--noheader",
        "-t",
        "all",
        "-o",
        "%i %T",
    ])) {
        Ok(text) => parse_squeue(&text),
        Err(e) => {
            tracing::warn!("polling SLURM: {e}");
            return HashMap::new();
        }
    };
    seen.retain(|id, _| ids.contains(id));
    let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    for id in missing {
        let state = match run(Command::new("scontrol").args(["show", "job", id])) {
            Ok(text) => field(&text, "JobState").unwrap_or("UNKNOWN").to_string(),
            Err(_) => "UNKNOWN".into(),
        };
        seen.insert(id.clone(), state);
    }
    seen
}

impl Monitor {
    /// Watches `id` until it finishes (its state) or `cancel` is set (None); starts the poller
    /// thread when none runs.
    fn wait(self: &Arc<Monitor>, id: &str, poll: Duration, cancel: &AtomicBool) -> Option<String> {
        self.watch(id, poll);
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let state = w.jobs.get(id).cloned().unwrap_or_default();
            if finished(&state) {
                w.jobs.remove(id);
                return Some(state);
            }
            if cancel.load(Ordering::Relaxed) {
                w.jobs.remove(id);
                return None;
            }
            w = self
                .changed
                .wait_timeout(w, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Watches `id` without waiting (a packing agent's job), starting the poller if needed.
    fn watch(self: &Arc<Monitor>, id: &str, poll: Duration) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        w.jobs.entry(id.to_string()).or_default();
        if !w.polling {
            w.polling = true;
            let m = Arc::clone(self);
            std::thread::spawn(move || m.poll_loop(poll));
        }
    }

    /// A watched job's last known state ("" before the first poll).
    fn peek(&self, id: &str) -> Option<String> {
        let w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        w.jobs.get(id).cloned()
    }

    fn poll_loop(&self, poll: Duration) {
        loop {
            std::thread::sleep(poll);
            // Jobs known to have ended keep their state for `peek`, and are not asked again.
            let ids: HashSet<String> = {
                let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let ids: HashSet<String> = w
                    .jobs
                    .iter()
                    .filter(|(_, s)| !finished(s))
                    .map(|(id, _)| id.clone())
                    .collect();
                if ids.is_empty() {
                    w.polling = false;
                    return;
                }
                ids
            };
            let states = poll_once(&ids);
            let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
            for (id, state) in states {
                if let Some(s) = w.jobs.get_mut(&id) {
                    *s = state;
                }
            }
            self.changed.notify_all();
        }
    }

    /// Waits until a submission is allowed by the rate limit, and claims it.
    fn pace(&self, interval: Duration) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = w.last_submit {
            let due = last + interval;
            let now = Instant::now();
            if due > now {
                w.last_submit = Some(due);
                drop(w);
                std::thread::sleep(due - now);
                return;
            }
        }
        w.last_submit = Some(Instant::now());
    }
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
        if let Some(t) = l.time {
            a.push(format!("--time={}", t.slurm()));
        }
        if let Some(m) = l.mem {
            a.push(format!("--mem={}M", m.mib()));
        }
        if let Some(p) = &self.partition {
            a.push(format!("--partition={p}"));
        }
        a.extend(self.extra.iter().cloned());
        // The comment names the job file, so a run can find the job by it; the exit status
        // goes beside the job file, so a run can collect the job after SLURM has forgotten it.
        a.push(format!("--comment={}", l.job_file.display()));
        a.push(format!(
            "--wrap={} exec-stage {}; s=$?; echo $s > {}; exit $s",
            shell_quote(
                &super::program(&self.program, l.worker)
                    .display()
                    .to_string()
            ),
            shell_quote(&l.job_file.display().to_string()),
            shell_quote(&super::exit_file(l.job_file).display().to_string())
        ));
        a
    }

    /// The job whose comment is this job file, among this user's jobs SLURM still lists. The
    /// listing is taken once, at the first lookup: the jobs looked up are those of a run that
    /// has ended, so none appears later.
    fn find_by_comment(&self, job_file: &Path) -> Result<Option<String>, ExecError> {
        let mut jobs = self.by_comment.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.is_none() {
            let text = run(Command::new("squeue").args([
                "--me",
                "--noheader",
                "-t",
                "all",
                "-o",
                "%i|%k",
            ]))?;
            *jobs = Some(
                text.lines()
                    .filter_map(|l| {
                        let (id, comment) = l.split_once('|')?;
                        Some((comment.trim().to_string(), id.trim().to_string()))
                    })
                    .collect(),
            );
        }
        Ok(jobs
            .as_ref()
            .and_then(|j| j.get(&job_file.display().to_string()).cloned()))
    }

    /// Waits for job `id` of launch `l` to end and turns its end into the stage's result.
    fn follow(&self, l: &Launch<'_>, id: &str, cancel: &AtomicBool) -> Result<(), ExecError> {
        let Some(state) = self.monitor.wait(id, self.poll, cancel) else {
            let _ = Command::new("scancel").arg(id).status();
            return Err(ExecError::Cancelled);
        };
        match state.as_str() {
            // SLURM marks a job COMPLETED only when its script exited 0.
            "COMPLETED" => Ok(()),
            "TIMEOUT" if l.time.is_some() => Err(ExecError::TimeLimit(l.time.expect("checked"))),
            // Forgotten by SLURM: its exit file says how it ended, if it got that far.
            "UNKNOWN" => match exit_status(l) {
                Some(0) => Ok(()),
                Some(code) => Err(ExecError::Failed(format!("SLURM job {id} exited {code}"))),
                None => Err(ExecError::Failed(format!(
                    "SLURM job {id} is no longer known to SLURM and left no exit status"
                ))),
            },
            _ => {
                // The exit code, for the message: one lookup per failed job.
                let code = self
                    .state(id)
                    .map(|(_, c)| format!(" (exit code {c})"))
                    .unwrap_or_default();
                Err(ExecError::Failed(format!(
                    "SLURM job {id} ended {state}{code}"
                )))
            }
        }
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
        if let Some(share) = l.gpu_share {
            return self.execute_packed(l, share, cancel);
        }
        self.monitor.pace(self.submit_interval);
        let out = run(Command::new("sbatch").args(self.sbatch_args(l)))?;
        // --parsable prints "ID" or "ID;cluster".
        let id = out.split(';').next().unwrap_or_default().trim().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ExecError::Failed(format!(
                "sbatch printed no job id: {out:?}"
            )));
        }
        (l.submitted)(&id);
        tracing::info!(stage = l.stage, job = %id, "submitted to SLURM");
        self.follow(l, &id, cancel)
    }

    fn detached(&self) -> bool {
        true
    }

    fn adopt(
        &self,
        l: &Launch<'_>,
        job: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<(), ExecError> {
        // Finished while nobody watched: its exit file has the outcome.
        if let Some(code) = exit_status(l) {
            return match code {
                0 => Ok(()),
                c => Err(ExecError::Failed(format!(
                    "the adopted job's stage exited {c}"
                ))),
            };
        }
        // A packed stage's job is its agent's: follow its exit status, not the job.
        if let (Some(agent_job), Some(_)) = (job, l.gpu_share) {
            return self.wait_packed(l, agent_job, cancel);
        }
        let id = match job {
            Some(id) => id.to_string(),
            None => match self.find_by_comment(l.job_file)? {
                Some(id) => id,
                // The earlier run ended before sbatch answered and SLURM has no job for this
                // job file, nor did one leave an exit status: nothing was submitted.
                None => {
                    tracing::info!(
                        stage = l.stage,
                        "interrupted submission never reached SLURM; submitting"
                    );
                    return self.execute(l, cancel);
                }
            },
        };
        (l.submitted)(&id);
        tracing::info!(stage = l.stage, job = %id, "adopted SLURM job");
        self.follow(l, &id, cancel)
    }
}

/// The exit status a job wrote beside its job file, once its stage process ended.
fn exit_status(l: &Launch<'_>) -> Option<i32> {
    std::fs::read_to_string(super::exit_file(l.job_file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sbatch_request_matches_the_stage() {
        let ex = SlurmExecutor::new(
            PathBuf::from("/opt/camu pipe/camu-pipe"),
            Some("gpu".into()),
            vec!["--account=lab".into()],
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let args = ex.sbatch_args(&Launch {
            stage: "train@dataset=mnist",
            worker: Some("camu-worker"),
            job_file: Path::new("/c/tmp/k.1/job.json"),
            log: Path::new("/c/logs/k.log"),
            threads: 4,
            gpus: &[],
            gpu_count: 2,
            gpu_share: None,
            time: Some(crate::spec::TimeLimit::parse("1h30m").unwrap()),
            mem: Some(crate::spec::Memory::parse("16G").unwrap()),
            submitted: &|_| {},
        });
        assert!(args.contains(&"--time=0-01:30:00".to_string()));
        assert!(args.contains(&"--mem=16384M".to_string()));
        assert!(args.contains(&"--cpus-per-task=4".to_string()));
        assert!(args.contains(&"--gres=gpu:2".to_string()));
        assert!(args.contains(&"--partition=gpu".to_string()));
        assert!(args.contains(&"--output=/c/logs/k.log".to_string()));
        assert_eq!(
            args.last().unwrap(),
            "--wrap='/opt/camu pipe/camu-worker' exec-stage '/c/tmp/k.1/job.json'; s=$?; echo $s > '/c/tmp/k.1/exit'; exit $s"
        );
        assert!(args.contains(&"--comment=/c/tmp/k.1/job.json".to_string()));
    }

    #[test]
    fn parses_scontrol_fields() {
        let text = "JobId=12 JobName=x\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=1:0";
        assert_eq!(field(text, "JobState"), Some("FAILED"));
        assert_eq!(field(text, "ExitCode"), Some("1:0"));
        assert!(finished("FAILED") && finished("COMPLETED") && !finished("PENDING"));
        assert!(finished("UNKNOWN") && !finished(""));
        let q = parse_squeue("12 RUNNING\n13 COMPLETED\n\n");
        assert_eq!(q["12"], "RUNNING");
        assert_eq!(q["13"], "COMPLETED");
        assert_eq!(q.len(), 2);
    }
}
