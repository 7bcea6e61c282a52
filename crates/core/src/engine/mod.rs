//! The engine: [`targets`] picks the stages a command acts on, [`resolve`] decides each one
//! (cached, or to run and why) for `status` and `run` alike, [`schedule`] shares CPU threads
//! and GPU ids, and [`runner`] runs one stage through an executor. `run`'s dispatcher, here,
//! starts what fits and handles each typed [`runner::Completion`].

mod dispatch;
pub mod resolve;
pub mod runner;
pub mod schedule;
mod targets;

pub use runner::log_tail;
pub use targets::selection;

use crate::cache::{Cache, CacheError, Record};
use crate::executor::Executor;
use crate::graph::Dag;
use crate::progress::Reporter;
use crate::spec::{Pipeline, SpecError};
use resolve::{Decision, Resolver};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Selection(String),
    #[error("stage `{stage}`: input {path}: {cause}")]
    Input {
        stage: String,
        path: PathBuf,
        cause: String,
    },
    #[error("{failed} stage(s) failed: {names}")]
    StagesFailed { failed: usize, names: String },
    /// The cache could not store a stage's results (read-only, full, or unwritable).
    #[error("stage `{stage}`: {source}")]
    CacheDuringRun {
        stage: String,
        #[source]
        source: runner::RunError,
    },
    #[error("interrupted; finished stages are cached, the rest will run next time")]
    Interrupted,
    /// The run's lock file could not be written: gc would not know what the run needs.
    #[error(
        "cannot write lock file {path}: {source}; the results are cached, but until a run can write it gc of another pipeline may delete them"
    )]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which stages a command acts on, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cache_dir: PathBuf,
    /// Open the cache without creating anything (status, report, path, dry runs).
    pub read_only: bool,
    pub data_dir: PathBuf,
    /// Run these (declared or expanded names) and their ancestors only.
    pub targets: Vec<String>,
    /// Matrix slice, e.g. seed=0.
    pub select: Vec<(String, String)>,
    pub force_all: bool,
    pub force: Vec<String>,
    pub keep_going: bool,
    /// CPU threads shared by running stages.
    pub cpus: usize,
    /// GPU device ids available to stages.
    pub gpus: Vec<String>,
    /// At most this many stages at once (default: as many as the budget allows; 64 when the
    /// executor manages resources itself).
    pub jobs: Option<usize>,
}

/// A stage's state as `status` and `--dry-run` report it.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: String,
    /// `cached` or `run`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where a cached stage's outputs are (`cache/out/KEY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<std::path::PathBuf>,
    pub reasons: Vec<String>,
    /// The stages it reads (expanded names), so that tools can rebuild the DAG from `--json`.
    pub needs: Vec<String>,
}

/// The outcome of a run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub ran: Vec<String>,
    pub cached: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub not_run: Vec<String>,
    pub seconds: f64,
}

/// The engine bound to one pipeline and one cache.
pub struct Engine<'a> {
    pub pipeline: &'a Pipeline,
    pub dag: Dag,
    pub cache: Cache,
    pub opts: Options,
}

impl<'a> Engine<'a> {
    pub fn new(pipeline: &'a Pipeline, opts: Options) -> Result<Engine<'a>, EngineError> {
        let dag = Dag::build(pipeline)?;
        let cache = if opts.read_only {
            Cache::open_read_only(&opts.cache_dir)?
        } else {
            Cache::open(&opts.cache_dir)?
        };
        Ok(Engine {
            pipeline,
            dag,
            cache,
            opts,
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver::new(
            self.pipeline,
            &self.cache,
            self.opts.force_all,
            &self.opts.force,
            false,
        )
    }

    /// Every selected stage as cached or to run, and why. Reads only: nothing is run, repaired
    /// or discarded.
    pub fn status(&mut self) -> Result<Vec<StageStatus>, EngineError> {
        let mask = selection(self.pipeline, &self.dag, &self.opts)?;
        let resolver = self.resolver();
        let mut records: Vec<Option<Record>> = vec![None; self.pipeline.stages.len()];
        let mut out = Vec::new();
        for &i in self.dag.order.iter().filter(|&&i| mask[i]) {
            let stage = self.pipeline.stages[i].name.clone();
            let needs = self.pipeline.stages[i].needs.clone();
            out.push(match resolver.resolve(i, &records)? {
                Decision::Cached(r) => {
                    let key = Some(r.key.clone());
                    let out = Some(self.cache.out_dir(&r.key));
                    records[i] = Some(r);
                    StageStatus {
                        stage,
                        state: "cached",
                        key,
                        out,
                        reasons: vec![],
                        needs,
                    }
                }
                Decision::Run {
                    key, mut reasons, ..
                } => {
                    if let Some(s) = self.cache.submission(&key) {
                        let job = s.job.as_deref().unwrap_or("(id not recorded)");
                        reasons.insert(
                            0,
                            format!("batch job {job} was submitted for it by an earlier run; the next `run` adopts it"),
                        );
                    }
                    StageStatus {
                        stage,
                        state: "run",
                        key: Some(key),
                        out: None,
                        reasons,
                        needs,
                    }
                }
                Decision::Pending { reasons } => StageStatus {
                    stage,
                    state: "run",
                    key: None,
                    out: None,
                    reasons,
                    needs,
                },
            });
        }
        Ok(out)
    }

    /// Runs every selected stage that has no valid record.
    pub fn run(
        &mut self,
        executor: Arc<dyn Executor>,
        reporter: &mut Reporter,
        interrupted: Arc<AtomicBool>,
    ) -> Result<Summary, EngineError> {
        dispatch::run(self, executor, reporter, interrupted)
    }
}
