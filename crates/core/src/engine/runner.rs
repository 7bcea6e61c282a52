//! The stage runner: runs one stage under its key lock through an executor and commits its
//! outputs, reporting a typed [`Completion`].

use crate::cache::{Cache, CacheError, KeyMaterial, Record};
use crate::executor::{ExecError, Executor, Launch};
use crate::progress::{Event, Reporter, now};
use crate::stage::StageJob;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// One stage ready to execute.
pub struct Work {
    /// The stage's index in the pipeline.
    pub index: usize,
    pub job: StageJob,
    /// GPUs requested (the executor may allocate them itself).
    pub gpu_count: usize,
    /// The stage's limits and retries.
    pub resources: crate::spec::Resources,
    pub worker: Option<&'static str>,
    pub material: KeyMaterial,
    pub reasons: Vec<String>,
    pub forced: bool,
}

/// Why a started stage failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{path} is not valid JSON: {source}")]
    Metrics {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An input's cached file no longer has the hash its record names: something (this stage, a
    /// stage beside it, a person) wrote into the cache. Nothing of this stage is committed.
    #[error(
        "input `{input}` changed while the stage ran: {path} has hash {actual}, its record says {expected}; nothing of this stage is cached, and that input's entry is discarded so the next run recomputes it"
    )]
    InputModified {
        input: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl RunError {
    /// The cache, not the stage's own work, failed: exit code 3 rather than 1.
    pub fn is_cache_failure(&self) -> bool {
        matches!(
            self,
            RunError::Cache(CacheError::Io { .. }) | RunError::Write { .. }
        )
    }
}

/// How a started stage ended.
pub enum Outcome {
    /// It ran and its outputs are committed.
    Ran(Record),
    /// A concurrent run computed the same key while this one waited for the lock.
    Reused(Record),
    Failed(RunError),
    /// Stopped by an interrupt.
    Cancelled,
}

/// The message a running stage sends back to the dispatcher.
pub struct Completion {
    pub index: usize,
    pub outcome: Outcome,
}

/// Last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("         | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one stage under its key lock.
pub fn run_one(
    cache: &Cache,
    executor: &dyn Executor,
    work: Work,
    reporter: &Reporter,
    cancel: &AtomicBool,
) -> Completion {
    let index = work.index;
    let key = work.job.key.clone();
    let stage = work.job.stage.clone();
    let fail = |e: RunError| {
        let log = cache.log_path(&key);
        // No path to a log that was never written (e.g. the cache is read-only).
        let shown = if log.exists() {
            log.display().to_string()
        } else {
            String::new()
        };
        reporter.emit(Event::Failed {
            stage: stage.clone(),
            error: e.to_string(),
            log: shown,
            tail: log_tail(&log, 20),
        });
        Completion {
            index,
            outcome: Outcome::Failed(e),
        }
    };
    let lock = match cache.try_lock(&key) {
        Ok(Some(l)) => l,
        Ok(None) => {
            reporter.emit(Event::Waiting {
                stage: stage.clone(),
                reason: "a stage with the same key is running (in this run or a concurrent one)"
                    .into(),
            });
            match cache.lock(&key) {
                Ok(l) => l,
                Err(e) => return fail(e.into()),
            }
        }
        Err(e) => return fail(e.into()),
    };
    // Another process may have computed it while we waited for the lock.
    if !work.forced
        && let Some(r) = cache.record(&key)
        && cache.verify(&r, true).is_ok()
    {
        return Completion {
            index,
            outcome: Outcome::Reused(r),
        };
    }
    let result = execute(cache, executor, work, reporter, cancel);
    drop(lock);
    match result {
        Ok(r) => Completion {
            index,
            outcome: Outcome::Ran(r),
        },
        Err(_) if cancel.load(Ordering::Relaxed) => Completion {
            index,
            outcome: Outcome::Cancelled,
        },
        Err(e) => fail(e),
    }
}

/// The longest stage log kept whole; a longer one keeps its first [`LOG_HEAD`] and last
/// [`LOG_TAIL`] bytes, which hold the start-up and the error.
const LOG_MAX: u64 = 16 << 20;
const LOG_HEAD: u64 = 1 << 20;
const LOG_TAIL: u64 = 4 << 20;

/// Cuts a stage log over [`LOG_MAX`] to its head and tail, saying how much was left out.
fn cap_log(path: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return;
    };
    if len <= LOG_MAX {
        return;
    }
    let mut head = vec![0; LOG_HEAD as usize];
    let mut tail = vec![0; LOG_TAIL as usize];
    let read = f.read_exact(&mut head).is_ok()
        && f.seek(SeekFrom::End(-(LOG_TAIL as i64))).is_ok()
        && f.read_exact(&mut tail).is_ok();
    if !read {
        return;
    }
    let left_out = len - LOG_HEAD - LOG_TAIL;
    let mut text = head;
    text.extend(format!("\n[camu-pipe: {left_out} bytes of this log left out]\n").bytes());
    text.extend(tail);
    if let Err(e) = crate::cache::write_atomic(path, &text) {
        tracing::warn!("cannot shorten log {}: {e}", path.display());
    }
}

/// Re-hashes every input entry of `job`; a changed one is discarded and fails the stage.
fn verify_inputs(cache: &Cache, job: &StageJob) -> Result<(), RunError> {
    for (name, input) in &job.inputs {
        let Some(key) = input.dir.file_name().and_then(|k| k.to_str()) else {
            continue;
        };
        let Some(record) = cache.record(key) else {
            continue;
        };
        if let Err(c) = cache.verify(&record, false) {
            cache.discard(&record);
            return Err(RunError::InputModified {
                input: name.clone(),
                path: c.path,
                expected: c.expected,
                actual: c.actual,
            });
        }
    }
    Ok(())
}

/// Stages the job, runs it and commits its outputs (with the key's lock held).
fn execute(
    cache: &Cache,
    executor: &dyn Executor,
    work: Work,
    reporter: &Reporter,
    cancel: &AtomicBool,
) -> Result<Record, RunError> {
    let Work {
        mut job,
        gpu_count,
        resources,
        worker,
        material,
        reasons,
        ..
    } = work;
    let key = job.key.clone();
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| RunError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    let log = cache.log_path(&key);
    let header = format!("# camu-pipe: stage {} key {key}\n", job.stage);
    let detached = executor.detached();
    // A batch job that an earlier run submitted for this key and never collected (it died):
    // adopted, not submitted again. The key's lock, held here, makes one run its only owner.
    let mut adopting = detached
        .then(|| cache.submission(&key))
        .flatten()
        .filter(|s| s.staging.join("job.json").is_file());
    if detached && adopting.is_none() {
        cache.forget_submission(&key);
    }
    let staging = match &adopting {
        Some(s) => s.staging.clone(),
        None => cache.staging(&key)?,
    };
    job.out_dir = staging.join("out");
    let job_file = staging.join("job.json");
    if adopting.is_none() {
        let bytes = serde_json::to_vec_pretty(&job).expect("a stage description serializes");
        write(&job_file, &bytes)?;
        write(&log, header.as_bytes())?;
    }
    let mut reasons = reasons;
    if let Some(s) = &adopting {
        let job = s.job.as_deref().unwrap_or("(id not recorded)");
        reasons.insert(
            0,
            format!("adopted batch job {job}, submitted by an earlier run"),
        );
    }
    reporter.emit(Event::Started {
        stage: job.stage.clone(),
        key: key.clone(),
        threads: job.threads,
        gpus: job.gpus.clone(),
        reasons,
    });
    let started = now();
    let submission = |id: Option<&str>| crate::cache::Submission {
        key: key.clone(),
        stage: job.stage.clone(),
        staging: staging.clone(),
        job: id.map(str::to_string),
        submitted_at: now(),
    };
    let record_job = |id: &str| {
        if let Err(e) = cache.record_submission(&submission(Some(id))) {
            tracing::warn!("cannot record batch job {id}: {e}");
        }
    };
    let launch = Launch {
        stage: &job.stage,
        worker,
        job_file: &job_file,
        log: &log,
        threads: job.threads,
        gpus: &job.gpus,
        gpu_count,
        gpu_share: resources.gpus.is_fraction().then(|| resources.gpus.milli()),
        time: resources.time,
        mem: resources.mem,
        submitted: &record_job,
    };
    // A failed attempt is retried up to `retries` times, each from a fresh output directory;
    // its log is kept beside the key's.
    let attempts = resources.retries.unwrap_or(0).saturating_add(1);
    let mut attempt = 1;
    let outcome = loop {
        let ran = match adopting.take() {
            Some(s) => executor.adopt(&launch, s.job.as_deref(), cancel),
            None => {
                // Recorded before the submission, so a run that dies while submitting still
                // leaves the next one a trail (the job is found by its comment).
                if detached {
                    cache.record_submission(&submission(None))?;
                }
                executor.execute(&launch, cancel)
            }
        };
        cap_log(&log);
        match ran {
            Err(e)
                if attempt < attempts
                    && !matches!(e, ExecError::Cancelled)
                    && !cancel.load(Ordering::Relaxed) =>
            {
                let kept = cache.attempt_log_path(&key, attempt);
                std::fs::rename(&log, &kept).map_err(|source| RunError::Write {
                    path: kept.clone(),
                    source,
                })?;
                reporter.emit(Event::Retrying {
                    stage: job.stage.clone(),
                    attempt,
                    attempts,
                    error: e.to_string(),
                    log: kept.display().to_string(),
                });
                attempt += 1;
                let _ = std::fs::remove_file(crate::executor::exit_file(&job_file));
                let _ = crate::cache::remove_dir_writable(&job.out_dir);
                std::fs::create_dir_all(&job.out_dir).map_err(|source| RunError::Write {
                    path: job.out_dir.clone(),
                    source,
                })?;
                write(
                    &log,
                    format!("{header}# attempt {attempt} of {attempts}\n").as_bytes(),
                )?;
            }
            r => break r,
        }
    };
    if detached {
        cache.forget_submission(&key);
    }
    outcome?;
    // The inputs must still be what their records say: cache files are hard links, so a stage
    // that makes one writable and changes it changes the cached object for everyone. Checked
    // after the stage (which also catches a change made beside it) and before anything of it
    // is committed, so no result computed from changed data is ever cached.
    verify_inputs(cache, &job)?;
    let metrics_path = job.out_dir.join("metrics.json");
    let metrics = match std::fs::read(&metrics_path) {
        Ok(b) => Some(
            serde_json::from_slice(&b).map_err(|source| RunError::Metrics {
                path: metrics_path,
                source,
            })?,
        ),
        Err(_) => None,
    };
    let record = Record {
        key: key.clone(),
        stage: job.stage.clone(),
        material,
        outputs: BTreeMap::new(),
        metrics,
        started_at: started,
        duration_s: now() - started,
        host: gethostname::gethostname().to_string_lossy().to_string(),
        device: if job.gpus.is_empty() {
            "cpu".into()
        } else {
            format!("gpu:{}", job.gpus.join(","))
        },
        camu_pipe_version: env!("CARGO_PKG_VERSION").to_string(),
        log: format!("logs/{key}.log"),
        attempts: attempt,
        threads: Some(job.threads),
        gpu_share: job.gpu_share,
    };
    Ok(cache.commit(&staging, &job.outputs, record)?)
}
