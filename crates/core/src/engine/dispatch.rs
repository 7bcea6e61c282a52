//! `run`'s dispatcher: resolves stages as their upstream completes, starts what the scheduler
//! fits, and handles each completion (cache, release children, or fail and skip descendants).

use super::resolve::{Decision, Resolver};
use super::runner::{Completion, Outcome, RunError, Work, run_one};
use super::schedule::{Fit, Grant, Slots};
use super::{Engine, EngineError, Summary, selection};
use crate::cache::{KeyMaterial, Record, lockfile};
use crate::executor::Executor;
use crate::progress::{Event, Mode, Reporter, now};
use crate::stage::{Input, StageJob};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::Scope;
use std::time::{Duration, Instant};

/// A stage resolved to run, waiting for resources.
struct Queued {
    index: usize,
    key: String,
    material: KeyMaterial,
    reasons: Vec<String>,
}

/// What running stages share with the dispatcher.
struct Shared<'env> {
    engine: &'env Engine<'env>,
    executor: Arc<dyn Executor>,
    reporter: &'env Reporter,
    cancel: Arc<AtomicBool>,
}

struct Dispatch<'e> {
    engine: &'e Engine<'e>,
    resolver: Resolver<'e>,
    mask: Vec<bool>,
    topo_pos: Vec<usize>,
    records: Vec<Option<Record>>,
    /// Parents of each stage not complete yet.
    waiting_on: Vec<usize>,
    /// Stages whose upstream is complete, to resolve.
    ready: Vec<usize>,
    queue: Vec<Queued>,
    running: HashMap<usize, (Grant, String)>,
    slots: Slots,
    blocked: HashSet<usize>,
    summary: Summary,
    stop: bool,
    /// The first failure of the cache itself (not of a stage's own work).
    cache_failure: Option<(String, RunError)>,
}

pub(super) fn run<'e>(
    engine: &'e Engine<'e>,
    executor: Arc<dyn Executor>,
    reporter: &mut Reporter,
    interrupted: Arc<AtomicBool>,
) -> Result<Summary, EngineError> {
    let start = now();
    let mask = selection(engine.pipeline, &engine.dag, &engine.opts)?;
    engine.cache.clean_stale_staging();
    // Registered for gc, which then leaves what this run writes alone.
    let _registered = engine.cache.register_run(&engine.pipeline.path)?;
    let selected: Vec<usize> = engine
        .dag
        .order
        .iter()
        .copied()
        .filter(|&i| mask[i])
        .collect();
    reporter.emit(Event::Plan {
        pipeline: engine.pipeline.path.display().to_string(),
        stages: selected.len(),
    });
    reporter.start(selected.len());
    let mut d = Dispatch::new(engine, mask, executor.manages_resources());
    let reporter: &Reporter = reporter;
    let shared = Shared {
        engine,
        executor,
        reporter,
        cancel: Arc::new(AtomicBool::new(false)),
    };
    let result = std::thread::scope(|scope| d.drive(scope, &shared, &interrupted));
    reporter.finish();
    result?;
    d.finish(&selected, start, &interrupted)
}

impl<'e> Dispatch<'e> {
    fn new(engine: &'e Engine<'e>, mask: Vec<bool>, remote: bool) -> Dispatch<'e> {
        let n = engine.pipeline.stages.len();
        let waiting_on: Vec<usize> = (0..n).map(|i| engine.dag.parents(i).count()).collect();
        let ready = engine
            .dag
            .order
            .iter()
            .copied()
            .filter(|&i| mask[i] && waiting_on[i] == 0)
            .collect();
        let mut topo_pos = vec![0; n];
        for (p, &i) in engine.dag.order.iter().enumerate() {
            topo_pos[i] = p;
        }
        let o = &engine.opts;
        Dispatch {
            engine,
            resolver: Resolver::new(engine.pipeline, &engine.cache, o.force_all, &o.force, true),
            mask,
            topo_pos,
            records: vec![None; n],
            waiting_on,
            ready,
            queue: Vec::new(),
            running: HashMap::new(),
            slots: Slots::new(o.cpus, o.gpus.clone(), remote, o.jobs),
            blocked: HashSet::new(),
            summary: Summary::default(),
            stop: false,
            cache_failure: None,
        }
    }

    /// The main loop: resolve, start, wait for a completion; until nothing is left to do.
    fn drive<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        shared: &'scope Shared<'scope>,
        interrupted: &AtomicBool,
    ) -> Result<(), EngineError> {
        let (tx, rx) = mpsc::channel::<Completion>();
        let mut last_view = Instant::now();
        loop {
            self.resolve_ready(shared.reporter)?;
            if interrupted.load(Ordering::Relaxed) {
                shared.cancel.store(true, Ordering::Relaxed);
                self.stop = true;
            }
            self.start_fitting(scope, shared, &tx);
            if self.running.is_empty() && (self.queue.is_empty() || self.stop) {
                return Ok(());
            }
            if shared.reporter.mode() == Mode::Live
                && last_view.elapsed() > Duration::from_millis(250)
            {
                last_view = Instant::now();
                self.show_running(shared.reporter);
            }
            // The timeout only bounds how late an interrupt is noticed.
            if let Ok(c) = rx.recv_timeout(Duration::from_millis(50)) {
                self.complete(c, shared.reporter, &shared.cancel);
            }
        }
    }

    /// Resolves every ready stage: cached ones complete at once, the rest join the queue.
    fn resolve_ready(&mut self, reporter: &Reporter) -> Result<(), EngineError> {
        let pos = &self.topo_pos;
        self.ready.sort_by_key(|&i| std::cmp::Reverse(pos[i]));
        while let Some(i) = self.ready.pop() {
            match self.resolver.resolve(i, &self.records)? {
                Decision::Cached(r) => {
                    reporter.emit(Event::Cached {
                        stage: self.engine.pipeline.stages[i].name.clone(),
                        key: r.key.clone(),
                    });
                    self.done(i, r, false);
                }
                Decision::Run {
                    key,
                    material,
                    reasons,
                    corrupt,
                } => {
                    if let Some(bad) = corrupt {
                        let (r, c) = *bad;
                        reporter.emit(Event::Corrupt {
                            stage: self.engine.pipeline.stages[i].name.clone(),
                            path: c.path.display().to_string(),
                            expected: c.expected,
                            actual: c.actual,
                        });
                        let _lock = self.engine.cache.lock(&key)?;
                        self.engine.cache.discard(&r);
                    }
                    self.queue.push(Queued {
                        index: i,
                        key,
                        material,
                        reasons,
                    });
                }
                Decision::Pending { .. } => unreachable!("ready stages have complete upstream"),
            }
        }
        // Topological order, so starts are deterministic.
        let pos = &self.topo_pos;
        self.queue.sort_by_key(|q| pos[q.index]);
        Ok(())
    }

    /// Starts every queued stage the scheduler fits now.
    fn start_fitting<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        shared: &'scope Shared<'scope>,
        tx: &mpsc::Sender<Completion>,
    ) {
        let engine = self.engine;
        let mut k = 0;
        while !self.stop && k < self.queue.len() {
            let s = &engine.pipeline.stages[self.queue[k].index];
            match self.slots.try_take(&s.resources) {
                Fit::Later if self.slots.running() == 0 => unreachable!("an idle machine fits"),
                Fit::Later => k += 1,
                Fit::Never(msg) => {
                    let q = self.queue.remove(k);
                    shared.reporter.emit(Event::Failed {
                        stage: s.name.clone(),
                        error: msg,
                        log: String::new(),
                        tail: String::new(),
                    });
                    self.failed(q.index, shared.reporter);
                }
                Fit::Now(grant) => {
                    let q = self.queue.remove(k);
                    let forced = self.resolver.forced(s);
                    let work = self.work(q, &grant, forced);
                    self.running
                        .insert(work.index, (grant, work.job.key.clone()));
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let cache = &shared.engine.cache;
                        let done = run_one(
                            cache,
                            &*shared.executor,
                            work,
                            shared.reporter,
                            &shared.cancel,
                        );
                        tx.send(done).ok();
                    });
                }
            }
        }
    }

    /// The stage description and everything the runner needs.
    fn work(&self, q: Queued, grant: &Grant, forced: bool) -> Work {
        let e = self.engine;
        let s = &e.pipeline.stages[q.index];
        let inputs: BTreeMap<String, Input> = s
            .needs
            .iter()
            .filter_map(|nm| {
                let j = e.pipeline.position(nm)?;
                let up = &e.pipeline.stages[j];
                let input = Input {
                    dir: e.cache.out_dir(&self.records[j].as_ref()?.key),
                    base: up.base.clone(),
                    kind: up.kind.clone(),
                    bindings: up.bindings.clone(),
                };
                Some((nm.clone(), input))
            })
            .collect();
        Work {
            index: q.index,
            job: StageJob {
                stage: s.name.clone(),
                kind: s.kind.clone(),
                key: q.key,
                params: s.params.clone(),
                command: s.command.clone(),
                env: s.env.clone(),
                outputs: s.outputs.clone(),
                inputs,
                out_dir: PathBuf::new(),
                workdir: e.pipeline.dir.clone(),
                data_dir: e.opts.data_dir.clone(),
                threads: grant.threads,
                gpus: grant.gpu_ids(),
                gpu_share: s
                    .resources
                    .gpus
                    .is_fraction()
                    .then(|| s.resources.gpus.milli() as f64 / 1000.0),
                python: s.python.clone(),
                input_hashes: q.material.files.clone(),
            },
            gpu_count: s.resources.gpus.touched(),
            resources: s.resources,
            worker: s.worker,
            material: q.material,
            reasons: q.reasons,
            forced,
        }
    }

    fn complete(&mut self, c: Completion, reporter: &Reporter, cancel: &AtomicBool) {
        if let Some((grant, _)) = self.running.remove(&c.index) {
            self.slots.give_back(grant);
        }
        let name = self.engine.pipeline.stages[c.index].name.clone();
        match c.outcome {
            Outcome::Reused(r) => {
                reporter.emit(Event::Cached {
                    stage: name,
                    key: r.key.clone(),
                });
                self.done(c.index, r, false);
            }
            Outcome::Ran(r) => {
                reporter.emit(Event::Finished {
                    stage: name,
                    key: r.key.clone(),
                    seconds: r.duration_s,
                });
                self.done(c.index, r, true);
            }
            Outcome::Cancelled => self.summary.not_run.push(name),
            Outcome::Failed(_) if cancel.load(Ordering::Relaxed) => self.summary.not_run.push(name),
            Outcome::Failed(e) => {
                if e.is_cache_failure() && self.cache_failure.is_none() {
                    self.cache_failure = Some((name, e));
                }
                self.failed(c.index, reporter)
            }
        }
    }

    /// Records a complete stage and makes its children whose upstream is complete ready.
    fn done(&mut self, i: usize, r: Record, ran: bool) {
        let name = self.engine.pipeline.stages[i].name.clone();
        if ran {
            self.summary.ran.push(name);
        } else {
            self.summary.cached.push(name);
        }
        self.records[i] = Some(r);
        for c in self.engine.dag.children(i) {
            self.waiting_on[c] -= 1;
            if self.waiting_on[c] == 0 && self.mask[c] {
                self.ready.push(c);
            }
        }
    }

    /// A failed stage: stop, or with `--keep-going` skip what depends on it.
    fn failed(&mut self, i: usize, reporter: &Reporter) {
        let p = self.engine.pipeline;
        let name = p.stages[i].name.clone();
        tracing::debug!(stage = %name, "stage failed");
        self.summary.failed.push(name.clone());
        if !self.engine.opts.keep_going {
            self.stop = true;
            return;
        }
        for d in self.engine.dag.descendants(i) {
            if self.mask[d] && self.blocked.insert(d) {
                let dn = p.stages[d].name.clone();
                reporter.emit(Event::Skipped {
                    stage: dn.clone(),
                    because: format!("upstream `{name}` failed"),
                });
                self.summary.skipped.push(dn);
            }
        }
    }

    fn show_running(&self, reporter: &Reporter) {
        let mut logs: Vec<(usize, String, PathBuf)> = self
            .running
            .iter()
            .map(|(i, (_, key))| {
                let name = self.engine.pipeline.stages[*i].name.clone();
                (self.topo_pos[*i], name, self.engine.cache.log_path(key))
            })
            .collect();
        logs.sort();
        let logs: Vec<(String, PathBuf)> = logs.into_iter().map(|(_, n, l)| (n, l)).collect();
        reporter.show_running(&logs);
    }

    /// Accounts for stages never reached, writes the lock file, and turns failures into errors.
    fn finish(
        mut self,
        selected: &[usize],
        start: f64,
        interrupted: &AtomicBool,
    ) -> Result<Summary, EngineError> {
        for &i in selected {
            let nm = &self.engine.pipeline.stages[i].name;
            let s = &self.summary;
            let accounted = self.records[i].is_some()
                || s.failed.contains(nm)
                || s.skipped.contains(nm)
                || s.not_run.contains(nm);
            if !accounted {
                self.summary.not_run.push(nm.clone());
            }
        }
        let lock = self.write_lock();
        self.summary.seconds = now() - start;
        if interrupted.load(Ordering::Relaxed) {
            return Err(EngineError::Interrupted);
        }
        if let Some((stage, source)) = self.cache_failure.take() {
            return Err(EngineError::CacheDuringRun { stage, source });
        }
        if !self.summary.failed.is_empty() {
            return Err(EngineError::StagesFailed {
                failed: self.summary.failed.len(),
                names: self.summary.failed.join(", "),
            });
        }
        lock?;
        Ok(self.summary)
    }

    /// Records what this run resolved, keeping earlier entries of stages it did not reach.
    fn write_lock(&self) -> Result<(), EngineError> {
        let path = &self.engine.pipeline.path;
        let old = self.resolver.lock();
        let mut lock = lockfile::LockFile {
            camu_pipe_version: env!("CARGO_PKG_VERSION").to_string(),
            stages: BTreeMap::new(),
        };
        for (i, s) in self.engine.pipeline.stages.iter().enumerate() {
            if let Some(r) = &self.records[i] {
                let entry = lockfile::LockEntry {
                    key: r.key.clone(),
                    material: r.material.clone(),
                    outputs: r.outputs.clone(),
                };
                lock.stages.insert(s.name.clone(), entry);
            } else if let Some(e) = old.stages.get(&s.name) {
                lock.stages.insert(s.name.clone(), e.clone());
            }
        }
        lock.write(path).map_err(|source| EngineError::LockFile {
            path: lockfile::path_for(path),
            source,
        })
    }
}
