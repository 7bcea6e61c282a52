//! The engine: selects stages, computes keys, explains status, and runs what is not cached in
//! parallel under CPU-thread and GPU budgets.

use crate::cache::{Cache, CacheError, KeyMaterial, Record, Upstream, key::canonical, lockfile};
use crate::executor::{ExecError, Executor, Launch};
use crate::graph::Dag;
use crate::progress::{Event, Reporter, now};
use crate::spec::{Pipeline, SpecError, Stage, interp};
use crate::stage::StageJob;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

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
    #[error("interrupted; finished stages are cached, the rest will run next time")]
    Interrupted,
    #[error("report: {0}")]
    Report(String),
}

impl EngineError {
    /// Exit code per error class: 2 bad pipeline or arguments, 3 cache or I/O trouble,
    /// 1 a stage failed, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Spec(_) | EngineError::Selection(_) | EngineError::Input { .. } => 2,
            EngineError::Cache(_) | EngineError::Report(_) => 3,
            EngineError::StagesFailed { .. } => 1,
            EngineError::Interrupted => 130,
        }
    }
}

/// Which stages a command acts on, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cache_dir: PathBuf,
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
    pub reasons: Vec<String>,
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

fn matches_name(stage: &Stage, pattern: &str) -> bool {
    stage.name == pattern || stage.base == pattern
}

/// The stages selected by targets and `--select`, as a mask over `Pipeline::stages`.
pub fn selection(p: &Pipeline, dag: &Dag, opts: &Options) -> Result<Vec<bool>, EngineError> {
    let mut mask = vec![true; p.stages.len()];
    if !opts.select.is_empty() {
        for (var, val) in &opts.select {
            let mut has_var = false;
            let mut has_val = false;
            for s in &p.stages {
                if let Some(v) = s.bindings.get(var) {
                    has_var = true;
                    has_val |= interp::value_text(v) == *val;
                }
            }
            if !has_var {
                return Err(EngineError::Selection(format!(
                    "--select {var}={val}: no stage has a matrix variable `{var}`"
                )));
            }
            if !has_val {
                return Err(EngineError::Selection(format!(
                    "--select {var}={val}: no stage has {var}={val}"
                )));
            }
        }
        for (i, s) in p.stages.iter().enumerate() {
            mask[i] = opts.select.iter().all(|(var, val)| {
                s.bindings
                    .get(var)
                    .is_none_or(|v| interp::value_text(v) == *val)
            });
        }
        // A stage that needs something outside the slice (e.g. a comparison over all seeds)
        // is outside it too.
        for &i in &dag.order {
            if mask[i] && dag.parents(i).any(|j| !mask[j]) {
                mask[i] = false;
            }
        }
    }
    if !opts.targets.is_empty() {
        let mut roots = Vec::new();
        for t in &opts.targets {
            let found: Vec<usize> = (0..p.stages.len())
                .filter(|&i| mask[i] && matches_name(&p.stages[i], t))
                .collect();
            if found.is_empty() {
                return Err(EngineError::Selection(format!(
                    "no stage `{t}` in {} (within the selection)",
                    p.path.display()
                )));
            }
            roots.extend(found);
        }
        let keep = dag.with_ancestors(&roots);
        for (i, m) in mask.iter_mut().enumerate() {
            *m = keep.contains(&i);
        }
    }
    for f in &opts.force {
        if !p.stages.iter().any(|s| matches_name(s, f)) {
            return Err(EngineError::Selection(format!(
                "--force {f}: no such stage"
            )));
        }
    }
    Ok(mask)
}

/// Hashes declared input files (and directories, file by file), memoised within one command.
#[derive(Default)]
struct FileHashes {
    memo: std::sync::Mutex<HashMap<PathBuf, String>>,
}

impl FileHashes {
    fn hash(&self, stage: &str, path: &Path) -> Result<String, EngineError> {
        if let Some(h) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Ok(h.clone());
        }
        let err = |cause: String| EngineError::Input {
            stage: stage.to_string(),
            path: path.to_path_buf(),
            cause,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let h = if meta.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files).map_err(|e| err(e.to_string()))?;
            files.sort();
            let mut listing = String::new();
            for f in files {
                let rel = f.strip_prefix(path).unwrap_or(&f).display().to_string();
                let h = crate::cache::hash_file(&f).map_err(|e| err(e.to_string()))?;
                listing.push_str(&format!("{rel}\0{h}\n"));
            }
            crate::cache::hash_bytes(listing.as_bytes())
        } else {
            crate::cache::hash_file(path).map_err(|e| err(e.to_string()))?
        };
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), h.clone());
        Ok(h)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            collect_files(&e.path(), out)?;
        } else {
            out.push(e.path());
        }
    }
    Ok(())
}

/// The engine bound to one pipeline and one cache.
pub struct Engine<'a> {
    pub pipeline: &'a Pipeline,
    pub dag: Dag,
    pub cache: Cache,
    pub opts: Options,
    files: FileHashes,
}

impl<'a> Engine<'a> {
    pub fn new(pipeline: &'a Pipeline, opts: Options) -> Result<Engine<'a>, EngineError> {
        let dag = Dag::build(pipeline)?;
        let cache = Cache::open(&opts.cache_dir)?;
        Ok(Engine {
            pipeline,
            dag,
            cache,
            opts,
            files: FileHashes::default(),
        })
    }

    fn forced(&self, s: &Stage) -> bool {
        self.opts.force_all || self.opts.force.iter().any(|f| matches_name(s, f))
    }

    /// Key material of stage `i`, given the records of its upstream stages.
    fn material(
        &self,
        i: usize,
        upstream: &BTreeMap<String, Upstream>,
    ) -> Result<KeyMaterial, EngineError> {
        let s = &self.pipeline.stages[i];
        let mut files = BTreeMap::new();
        for f in &s.inputs {
            let path = self.pipeline.dir.join(f);
            files.insert(f.clone(), self.files.hash(&s.name, &path)?);
        }
        Ok(KeyMaterial {
            kind: s.kind.clone(),
            kind_version: s.kind_version,
            params: canonical(&serde_json::Value::Object(s.params.clone())),
            upstream: upstream.clone(),
            command: s.command.clone(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            files,
            outputs: s.outputs.clone(),
        })
    }

    fn upstream_of(
        &self,
        i: usize,
        records: &[Option<Record>],
    ) -> Option<BTreeMap<String, Upstream>> {
        let s = &self.pipeline.stages[i];
        let mut up = BTreeMap::new();
        for n in &s.needs {
            let j = self.pipeline.position(n)?;
            let r = records[j].as_ref()?;
            up.insert(
                n.clone(),
                Upstream {
                    key: r.key.clone(),
                    outputs: r
                        .outputs
                        .iter()
                        .map(|(f, e)| (f.clone(), e.hash.clone()))
                        .collect(),
                },
            );
        }
        Some(up)
    }

    /// Every selected stage as cached or to run, and why.
    pub fn status(&mut self) -> Result<Vec<StageStatus>, EngineError> {
        let mask = selection(self.pipeline, &self.dag, &self.opts)?;
        let lock = lockfile::LockFile::read(&self.pipeline.path);
        let mut records: Vec<Option<Record>> = vec![None; self.pipeline.stages.len()];
        let mut out = Vec::new();
        for idx in 0..self.dag.order.len() {
            let i = self.dag.order[idx];
            if !mask[i] {
                continue;
            }
            let s = &self.pipeline.stages[i];
            let old = lock.stages.get(&s.name);
            let forced = self.forced(s);
            let Some(upstream) = self.upstream_of(i, &records) else {
                // Something upstream will run: our key is not known yet.
                let pending: Vec<String> = s
                    .needs
                    .iter()
                    .filter(|n| {
                        self.pipeline
                            .position(n)
                            .is_some_and(|j| records[j].is_none())
                    })
                    .cloned()
                    .collect();
                let shown = if pending.len() > 3 {
                    format!("{} and {} more", pending[..3].join(", "), pending.len() - 3)
                } else {
                    pending.join(", ")
                };
                let mut reasons = vec![format!("upstream will run: {shown}")];
                if let Some(old) = old {
                    let m = self.material(i, &old.material.upstream)?;
                    reasons.extend(m.diff(&old.material));
                }
                out.push(StageStatus {
                    stage: s.name.clone(),
                    state: "run",
                    key: None,
                    reasons,
                });
                continue;
            };
            let m = self.material(i, &upstream)?;
            let key = m.key();
            let mut reasons = Vec::new();
            let state = match self.cache.record(&key) {
                Some(r) => match self.cache.verify(&r) {
                    Ok(()) if !forced => {
                        records[i] = Some(r);
                        "cached"
                    }
                    Ok(()) => {
                        reasons.push("forced".to_string());
                        "run"
                    }
                    Err(c) => {
                        reasons.push(if c.actual == "missing" {
                            format!("cached output missing: {}", c.path.display())
                        } else {
                            format!(
                                "cached output corrupt: {} (hash {}, expected {})",
                                c.path.display(),
                                c.actual,
                                c.expected
                            )
                        });
                        "run"
                    }
                },
                None => {
                    match old {
                        None => reasons.push("never run".to_string()),
                        Some(o) if o.key == key => reasons
                            .push("outputs missing from the cache (removed or collected)".into()),
                        Some(o) => {
                            let d = m.diff(&o.material);
                            if d.is_empty() {
                                reasons.push("key changed".into());
                            }
                            reasons.extend(d);
                        }
                    }
                    "run"
                }
            };
            out.push(StageStatus {
                stage: s.name.clone(),
                state,
                key: Some(key),
                reasons,
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
        let start = now();
        let mask = selection(self.pipeline, &self.dag, &self.opts)?;
        self.cache.clean_stale_staging();
        let n = self.pipeline.stages.len();
        let selected: Vec<usize> = self
            .dag
            .order
            .iter()
            .copied()
            .filter(|&i| mask[i])
            .collect();
        reporter.emit(Event::Plan {
            pipeline: self.pipeline.path.display().to_string(),
            stages: selected.len(),
        });
        reporter.start(selected.len());
        let old_lock = lockfile::LockFile::read(&self.pipeline.path);

        let cpus = self.opts.cpus.max(1);
        let remote = executor.manages_resources();
        let max_jobs = self
            .opts
            .jobs
            .unwrap_or(if remote { 64 } else { usize::MAX })
            .max(1);
        let mut free_cpus = cpus;
        let mut free_gpus: Vec<String> = self.opts.gpus.clone();
        let mut records: Vec<Option<Record>> = vec![None; n];
        let mut waiting_on: Vec<usize> = (0..n).map(|i| self.dag.parents(i).count()).collect();
        let mut queue: Vec<(usize, KeyMaterial, String, Vec<String>)> = Vec::new();
        let mut running: HashMap<usize, (usize, Vec<String>)> = HashMap::new();
        let mut blocked: HashSet<usize> = HashSet::new();
        let mut summary = Summary::default();
        let mut stop = false;
        let (tx, rx) = mpsc::channel::<(usize, Result<Record, String>, bool)>();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut running_keys: std::collections::BTreeMap<usize, String> = Default::default();
        let mut last_view = std::time::Instant::now();

        // Stages whose upstream is complete are resolved: cached, or queued with their key.
        let mut ready: Vec<usize> = selected
            .iter()
            .copied()
            .filter(|&i| waiting_on[i] == 0)
            .collect();
        let mut topo_pos = vec![0; n];
        for (p, &i) in self.dag.order.iter().enumerate() {
            topo_pos[i] = p;
        }
        let result = std::thread::scope(|scope| -> Result<(), EngineError> {
            loop {
                ready.sort_by_key(|&i| std::cmp::Reverse(topo_pos[i]));
                while let Some(i) = ready.pop() {
                    let up = self.upstream_of(i, &records).expect("parents are complete");
                    let m = self.material(i, &up)?;
                    let key = m.key();
                    let s = &self.pipeline.stages[i];
                    if !self.forced(s)
                        && let Some(r) = self.cache.record(&key)
                    {
                        match self.cache.verify(&r) {
                            Ok(()) => {
                                reporter.emit(Event::Cached {
                                    stage: s.name.clone(),
                                    key: key.clone(),
                                });
                                summary.cached.push(s.name.clone());
                                records[i] = Some(r);
                                release(&self.dag, i, &mask, &mut waiting_on, &mut ready);
                                continue;
                            }
                            Err(c) => {
                                reporter.emit(Event::Corrupt {
                                    stage: s.name.clone(),
                                    path: c.path.display().to_string(),
                                    expected: c.expected,
                                    actual: c.actual,
                                });
                                let _lock = self.cache.lock(&key)?;
                                self.cache.discard(&r);
                            }
                        }
                    }
                    let reasons = match old_lock.stages.get(&s.name) {
                        _ if self.forced(s) => vec!["forced".to_string()],
                        None => vec!["never run".to_string()],
                        Some(o) if o.key == key => vec!["outputs missing from the cache".into()],
                        Some(o) => m.diff(&o.material),
                    };
                    queue.push((i, m, key, reasons));
                    // Keep the queue in topological order so starts are deterministic.
                    queue.sort_by_key(|(i, ..)| topo_pos[*i]);
                }

                if interrupted.load(Ordering::Relaxed) {
                    cancel.store(true, Ordering::Relaxed);
                    stop = true;
                }
                // Start whatever fits in the free CPU threads and GPUs.
                let mut k = 0;
                while !stop && k < queue.len() {
                    let i = queue[k].0;
                    let s = &self.pipeline.stages[i];
                    let want_cpu = if remote {
                        s.resources.cpus.max(1)
                    } else {
                        s.resources.cpus.clamp(1, cpus)
                    };
                    if running.len() >= max_jobs {
                        break;
                    }
                    if !remote && s.resources.gpus > self.opts.gpus.len() {
                        queue.remove(k);
                        let msg = format!(
                            "needs {} GPU(s) but {} are available (see --gpus)",
                            s.resources.gpus,
                            self.opts.gpus.len()
                        );
                        reporter.emit(Event::Failed {
                            stage: s.name.clone(),
                            error: msg.clone(),
                            log: String::new(),
                            tail: String::new(),
                        });
                        // Goes through the same failure handling as a stage that ran.
                        tx.send((i, Err(msg), false)).ok();
                        running.insert(i, (0, Vec::new()));
                        continue;
                    }
                    if !remote && (want_cpu > free_cpus || s.resources.gpus > free_gpus.len()) {
                        k += 1;
                        continue;
                    }
                    let (i, m, key, reasons) = queue.remove(k);
                    let gpus: Vec<String> = if remote {
                        Vec::new()
                    } else {
                        free_cpus -= want_cpu;
                        free_gpus.drain(..s.resources.gpus).collect()
                    };
                    running.insert(i, (if remote { 0 } else { want_cpu }, gpus.clone()));
                    running_keys.insert(i, key.clone());
                    let inputs: BTreeMap<String, PathBuf> = s
                        .needs
                        .iter()
                        .filter_map(|nm| {
                            let j = self.pipeline.position(nm)?;
                            Some((nm.clone(), self.cache.out_dir(&records[j].as_ref()?.key)))
                        })
                        .collect();
                    let job = StageJob {
                        stage: s.name.clone(),
                        kind: s.kind.clone(),
                        key: key.clone(),
                        params: s.params.clone(),
                        command: s.command.clone(),
                        env: s.env.clone(),
                        outputs: s.outputs.clone(),
                        inputs,
                        out_dir: PathBuf::new(),
                        workdir: self.pipeline.dir.clone(),
                        data_dir: self.opts.data_dir.clone(),
                        threads: want_cpu,
                        gpus: gpus.clone(),
                    };
                    let tx = tx.clone();
                    let cache = &self.cache;
                    let executor = executor.clone();
                    let cancel = cancel.clone();
                    let rep: &Reporter = reporter;
                    let forced = self.forced(s);
                    let gpu_count = s.resources.gpus;
                    let worker = s.worker;
                    scope.spawn(move || {
                        let (res, reused) = run_one(
                            cache,
                            &*executor,
                            Work {
                                job,
                                gpu_count,
                                worker,
                                material: m,
                                reasons,
                                forced,
                            },
                            rep,
                            &cancel,
                        );
                        tx.send((i, res, reused)).ok();
                    });
                }

                if running.is_empty() && (queue.is_empty() || stop) {
                    break;
                }
                if reporter.mode() == crate::progress::Mode::Live
                    && last_view.elapsed() > Duration::from_millis(250)
                {
                    last_view = std::time::Instant::now();
                    let logs: Vec<(String, PathBuf)> = running_keys
                        .iter()
                        .map(|(i, k)| {
                            (
                                self.pipeline.stages[*i].name.clone(),
                                self.cache.log_path(k),
                            )
                        })
                        .collect();
                    reporter.show_running(&logs);
                }
                let Ok((i, res, reused)) = rx.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let (c, g) = running.remove(&i).unwrap_or_default();
                running_keys.remove(&i);
                free_cpus += c;
                free_gpus.extend(g);
                let name = self.pipeline.stages[i].name.clone();
                match res {
                    Ok(r) => {
                        if reused {
                            reporter.emit(Event::Cached {
                                stage: name.clone(),
                                key: r.key.clone(),
                            });
                            summary.cached.push(name);
                        } else {
                            reporter.emit(Event::Finished {
                                stage: name.clone(),
                                key: r.key.clone(),
                                seconds: r.duration_s,
                            });
                            summary.ran.push(name);
                        }
                        records[i] = Some(r);
                        release(&self.dag, i, &mask, &mut waiting_on, &mut ready);
                    }
                    Err(e) => {
                        if cancel.load(Ordering::Relaxed) {
                            summary.not_run.push(name);
                            continue;
                        }
                        tracing::debug!(stage = %name, error = %e, "stage failed");
                        summary.failed.push(name.clone());
                        if self.opts.keep_going {
                            for d in self.dag.descendants(i) {
                                if mask[d] && blocked.insert(d) {
                                    let dn = self.pipeline.stages[d].name.clone();
                                    reporter.emit(Event::Skipped {
                                        stage: dn.clone(),
                                        because: format!("upstream `{name}` failed"),
                                    });
                                    summary.skipped.push(dn);
                                }
                            }
                        } else {
                            stop = true;
                        }
                    }
                }
            }
            Ok(())
        });
        reporter.finish();
        result?;
        for &i in &selected {
            let nm = &self.pipeline.stages[i].name;
            let done = records[i].is_some()
                || summary.failed.contains(nm)
                || summary.skipped.contains(nm)
                || summary.not_run.contains(nm);
            if !done {
                summary.not_run.push(nm.clone());
            }
        }
        self.write_lock(&old_lock, &records);
        summary.seconds = now() - start;
        if interrupted.load(Ordering::Relaxed) {
            return Err(EngineError::Interrupted);
        }
        if !summary.failed.is_empty() {
            return Err(EngineError::StagesFailed {
                failed: summary.failed.len(),
                names: summary.failed.join(", "),
            });
        }
        Ok(summary)
    }

    /// Records what this run resolved, keeping earlier entries of stages it did not reach.
    fn write_lock(&self, old: &lockfile::LockFile, records: &[Option<Record>]) {
        let mut lock = lockfile::LockFile {
            camu_pipe_version: env!("CARGO_PKG_VERSION").to_string(),
            stages: BTreeMap::new(),
        };
        for (i, s) in self.pipeline.stages.iter().enumerate() {
            if let Some(r) = &records[i] {
                lock.stages.insert(
                    s.name.clone(),
                    lockfile::LockEntry {
                        key: r.key.clone(),
                        material: r.material.clone(),
                        outputs: r.outputs.clone(),
                    },
                );
            } else if let Some(e) = old.stages.get(&s.name) {
                lock.stages.insert(s.name.clone(), e.clone());
            }
        }
        if let Err(e) = lock.write(&self.pipeline.path) {
            tracing::warn!(
                "cannot write lock file {}: {e}",
                lockfile::path_for(&self.pipeline.path).display()
            );
        }
    }
}

/// Marks `i` complete and queues children whose upstream is now complete.
fn release(dag: &Dag, i: usize, mask: &[bool], waiting_on: &mut [usize], ready: &mut Vec<usize>) {
    for c in dag.children(i) {
        waiting_on[c] -= 1;
        if waiting_on[c] == 0 && mask[c] {
            ready.push(c);
        }
    }
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

/// Runs one stage under its key lock. Returns the record, and whether it was found already
/// computed by a concurrent run.
/// One stage ready to execute.
struct Work {
    job: StageJob,
    /// GPUs requested (the executor may allocate them itself).
    gpu_count: usize,
    worker: Option<&'static str>,
    material: KeyMaterial,
    reasons: Vec<String>,
    forced: bool,
}

fn run_one(
    cache: &Cache,
    executor: &dyn Executor,
    work: Work,
    reporter: &Reporter,
    cancel: &AtomicBool,
) -> (Result<Record, String>, bool) {
    let Work {
        mut job,
        gpu_count,
        worker,
        material,
        reasons,
        forced,
    } = work;
    let key = job.key.clone();
    let stage = job.stage.clone();
    let fail = |e: String| {
        let log = cache.log_path(&key);
        reporter.emit(Event::Failed {
            stage: stage.clone(),
            error: e.clone(),
            log: log.display().to_string(),
            tail: log_tail(&log, 20),
        });
        e
    };
    let lock = match cache.try_lock(&key) {
        Ok(Some(l)) => l,
        Ok(None) => {
            reporter.emit(Event::Waiting {
                stage: job.stage.clone(),
                reason: "a stage with the same key is running (in this run or a concurrent one)"
                    .into(),
            });
            match cache.lock(&key) {
                Ok(l) => l,
                Err(e) => return (Err(fail(e.to_string())), false),
            }
        }
        Err(e) => return (Err(fail(e.to_string())), false),
    };
    // Another process may have computed it while we waited for the lock.
    if !forced
        && let Some(r) = cache.record(&key)
        && cache.verify(&r).is_ok()
    {
        return (Ok(r), true);
    }
    let result = (|| -> Result<Record, String> {
        let staging = cache.staging(&key).map_err(|e| e.to_string())?;
        job.out_dir = staging.join("out");
        let job_file = staging.join("job.json");
        let bytes = serde_json::to_vec_pretty(&job).map_err(|e| e.to_string())?;
        std::fs::write(&job_file, bytes)
            .map_err(|e| format!("cannot write {}: {e}", job_file.display()))?;
        let log = cache.log_path(&key);
        std::fs::write(
            &log,
            format!("# camu-pipe: stage {} key {key}\n", job.stage),
        )
        .map_err(|e| format!("cannot write log {}: {e}", log.display()))?;
        reporter.emit(Event::Started {
            stage: job.stage.clone(),
            key: key.clone(),
            threads: job.threads,
            gpus: job.gpus.clone(),
            reasons,
        });
        let started = now();
        executor
            .execute(
                &Launch {
                    stage: &job.stage,
                    worker,
                    job_file: &job_file,
                    log: &log,
                    threads: job.threads,
                    gpus: &job.gpus,
                    gpu_count,
                },
                cancel,
            )
            .map_err(|e| match e {
                ExecError::Cancelled => "interrupted".to_string(),
                other => other.to_string(),
            })?;
        let metrics_path = job.out_dir.join("metrics.json");
        let metrics = match std::fs::read(&metrics_path) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| format!("{} is not valid JSON: {e}", metrics_path.display()))?,
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
        };
        cache
            .commit(&staging, &job.outputs, record)
            .map_err(|e| e.to_string())
    })();
    drop(lock);
    match result {
        Ok(r) => (Ok(r), false),
        Err(e) if cancel.load(Ordering::Relaxed) => (Err(e), false),
        Err(e) => (Err(fail(e)), false),
    }
}
