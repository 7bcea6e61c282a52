//! The camu-pipe command line: a thin layer over the library.

//!
//! It links no libtorch: ML stages run in the `camu-worker` binary binary next to it.

mod error;

use camu_core::engine::{Engine, Options};
use camu_core::executor::{LocalExecutor, SlurmExecutor};
use camu_core::progress::Reporter;
use camu_core::spec;
use clap::{Args, Parser, Subcommand};
use error::AppError;
use std::io::{IsTerminal, Write};

/// println that tolerates a closed stdout (`camu-pipe ... | head`).
macro_rules! say {
    ($($t:tt)*) => {{ let _ = writeln!(std::io::stdout().lock(), $($t)*); }};
}
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Parser)]
#[command(
    name = "camu-pipe",
    version,
    about = "Cached, parallel pipelines for machine-unlearning experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// The cache directory (records, outputs, logs).
    #[arg(
        long = "cache",
        env = "CAMU_CACHE_DIR",
        default_value = "cache",
        global = true
    )]
    cache_dir: PathBuf,
    /// The dataset store.
    #[arg(long, env = "CAMU_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// Machine-readable output: JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Clone)]
struct Selection {
    /// Only these stages (declared or expanded names) and what they need.
    targets: Vec<String>,
    /// A matrix slice, e.g. `--select seed=0,dataset=fashion_mnist` (repeatable).
    #[arg(long, value_name = "VAR=VALUE,...")]
    select: Vec<String>,
    /// Re-run even if cached: every stage with a bare `--force`, or the named stage.
    #[arg(long, value_name = "STAGE", num_args = 0..=1, default_missing_value = "*")]
    force: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExecutorKind {
    Local,
    Slurm,
}

#[derive(Args)]
struct RunArgs {
    pipeline: PathBuf,
    #[command(flatten)]
    sel: Selection,
    /// Show what would run and why, without running anything.
    #[arg(long)]
    dry_run: bool,
    /// After a failure, keep running everything not downstream of it.
    #[arg(long)]
    keep_going: bool,
    /// CPU threads shared by running stages (default: all cores).
    #[arg(long, env = "CAMU_CPUS")]
    cpus: Option<usize>,
    /// GPU ids stages may use, e.g. `0,1` (default: CUDA_VISIBLE_DEVICES, else nvidia-smi).
    #[arg(long, env = "CAMU_GPUS", value_delimiter = ',')]
    gpus: Option<Vec<String>>,
    /// Where stages run: `local` processes, or `slurm` batch jobs (sbatch; shared filesystem).
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// SLURM partition for `--executor slurm`.
    #[arg(long)]
    partition: Option<String>,
    /// Extra sbatch argument for `--executor slurm` (repeatable), e.g. `--sbatch-arg=--time=2:00:00`.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Seconds between two SLURM status queries (each one `squeue` for all the run's jobs;
    /// Nextflow's default poll interval is 5 s too).
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    slurm_poll: f64,
    /// At most this many `sbatch` submissions per second.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    submit_rate: f64,
    /// CPUs a SLURM packing agent requests for the fractional-GPU stages it runs (default:
    /// a stage's threads times the stages of its share that fit in one GPU).
    #[arg(long)]
    agent_cpus: Option<usize>,
    /// At most this many stages at once (default: what the CPU/GPU budget allows; 64 on SLURM).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every stage that has no valid cache record.
    Run(RunArgs),
    /// Show each stage as cached or to run, and why.
    Status {
        pipeline: PathBuf,
        #[command(flatten)]
        sel: Selection,
        #[command(flatten)]
        common: Common,
    },
    /// Compare methods: tables (printed, and written as Markdown, CSV, JSON) and plots (SVG, PNG)
    /// from whatever evaluate and audit stages have results so far.
    Report {
        pipeline: PathBuf,
        /// Where to write the files (default: reports/PIPELINE_NAME).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        sel: Selection,
        #[command(flatten)]
        common: Common,
    },
    /// Delete cache entries that neither the given pipelines' lock files nor their current keys
    /// reference, and the objects only those entries used.
    Gc {
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Report what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
        /// Keep only what the given pipelines reference, not what other pipelines that ran
        /// against this cache still reference in their lock files.
        #[arg(long)]
        only: bool,
        /// Stop protecting this registered pipeline's results (repeatable), e.g. one whose file
        /// is gone for good; without it gc refuses to run while a registered pipeline's lock
        /// file is missing or unreadable.
        #[arg(long, value_name = "PIPELINE")]
        forget: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the directory that holds a stage's current cached outputs (its model, metrics.json,
    /// ...), e.g. for `camu_pipe.load_model` in a notebook. Exit code 2 when the stage is unknown
    /// or its current inputs have no cached result (`status` says why).
    Path {
        pipeline: PathBuf,
        /// The stage: its expanded name, or its declared name when that has one instance.
        stage: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the built-in unlearning methods with every default and its source (Markdown; the
    /// text of docs/methods.md).
    Methods,
    /// Run one stage from its description (used by executors).
    #[command(hide = true)]
    ExecStage { job: PathBuf },
    /// Run the fractional-GPU stages placed in DIR, inside one SLURM job (used by the SLURM
    /// executor).
    #[command(hide = true)]
    SlurmAgent {
        dir: PathBuf,
        /// Seconds with nothing to run before the agent ends.
        #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
        idle: f64,
    },
}

fn parse_select(items: &[String]) -> Result<Vec<(String, String)>, AppError> {
    let mut out = Vec::new();
    for item in items
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| AppError::Usage(format!("--select `{item}`: expected VAR=VALUE")))?;
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

fn detect_gpus() -> Vec<String> {
    if let Ok(v) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn options(common: &Common, sel: &Selection) -> Result<Options, AppError> {
    Ok(Options {
        cache_dir: common.cache_dir.clone(),
        data_dir: std::path::absolute(&common.data_dir).unwrap_or_else(|_| common.data_dir.clone()),
        targets: sel.targets.clone(),
        select: parse_select(&sel.select)?,
        force_all: sel.force.iter().any(|f| f == "*"),
        force: sel.force.iter().filter(|f| *f != "*").cloned().collect(),
        ..Options::default()
    })
}

fn read_only(opts: Options) -> Options {
    Options {
        read_only: true,
        ..opts
    }
}

fn load(path: &Path) -> Result<spec::Pipeline, AppError> {
    spec::load(path, &camu_lab::kinds::registry()).map_err(|e| AppError::Engine(e.into()))
}

/// The expanded name `name` stands for: itself, or the one instance of a declared stage.
fn stage_named(p: &spec::Pipeline, name: &str) -> Result<String, AppError> {
    if p.stage(name).is_some() {
        return Ok(name.to_string());
    }
    let instances: Vec<&str> = p
        .stages
        .iter()
        .filter(|s| s.base == name)
        .map(|s| s.name.as_str())
        .collect();
    match instances.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(AppError::Usage(format!(
            "{}: no stage `{name}`",
            p.path.display()
        ))),
        many => Err(AppError::Usage(format!(
            "`{name}` has {} instances ({}); give the expanded name",
            many.len(),
            many.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn print_status(rows: &[camu_core::engine::StageStatus], json: bool) {
    if json {
        say!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return;
    }
    let width = rows.iter().map(|r| r.stage.len()).max().unwrap_or(0);
    for r in rows {
        let why = r.reasons.join("; ");
        say!("{:<6}  {:<width$}  {why}", r.state, r.stage);
    }
    let run = rows.iter().filter(|r| r.state == "run").count();
    say!(
        "{} stages: {} cached, {run} to run",
        rows.len(),
        rows.len() - run
    );
}

/// Before ML stages run: the libtorch the worker will load must be the one it was built for.
fn check_worker_libtorch(p: &spec::Pipeline) -> Result<(), AppError> {
    if p.stages.iter().all(|s| s.worker.is_none()) {
        return Ok(());
    }
    let path = std::env::var("LD_LIBRARY_PATH").ok();
    let built = option_env!("LIBTORCH").map(Path::new);
    match camu_lab::torch_lib::check(path.as_deref(), built)
        .map_err(|e| AppError::Usage(e.to_string()))?
    {
        Some(f) => tracing::info!(
            lib = %f.lib.display(),
            version = f.version.as_deref().unwrap_or("unknown"),
            cuda = f.cuda,
            "libtorch for ML stages"
        ),
        None => tracing::warn!("no libtorch_cpu.so found for the ML stages"),
    }
    Ok(())
}

/// Before anything runs: no selected stage may ask for more GPUs than this machine has.
fn check_gpus(engine: &Engine<'_>) -> Result<(), AppError> {
    let mask = camu_core::engine::selection(engine.pipeline, &engine.dag, &engine.opts)?;
    let have = engine.opts.gpus.len();
    let short: Vec<String> = engine
        .pipeline
        .stages
        .iter()
        .zip(&mask)
        .filter(|(s, selected)| **selected && s.resources.gpus.touched() > have)
        .map(|(s, _)| format!("`{}` ({})", s.name, s.resources.gpus))
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(AppError::Usage(format!(
        "{}: {} stage(s) need more GPUs than the {have} available (see --gpus): {}",
        engine.pipeline.path.display(),
        short.len(),
        short.join(", ")
    )))
}

/// A stage that asks for more CPU threads than the run has gets all of them: said, not silent.
fn warn_cpus(engine: &Engine<'_>) -> Result<(), AppError> {
    let mask = camu_core::engine::selection(engine.pipeline, &engine.dag, &engine.opts)?;
    let have = engine.opts.cpus;
    let over: Vec<String> = engine
        .pipeline
        .stages
        .iter()
        .zip(&mask)
        .filter(|(s, selected)| **selected && s.resources.cpus > have)
        .map(|(s, _)| format!("`{}` ({})", s.name, s.resources.cpus))
        .collect();
    if !over.is_empty() {
        tracing::warn!(
            "{} stage(s) ask for more CPU threads than the {have} this run has (--cpus) and get {have}: {}",
            over.len(),
            over.join(", ")
        );
    }
    Ok(())
}

fn main_inner(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Cmd::Methods => {
            say!("{}", camu_lab::methods::provenance_markdown().trim_end());
            Ok(())
        }
        Cmd::ExecStage { job } => {
            // The stage process: its stdout/stderr are the stage's log (a file: no colours).
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_ansi(colour())
                .with_writer(std::io::stderr)
                .try_init();
            Ok(camu_core::stage::exec_job(&job, camu_lab::kinds::RUNNERS)?)
        }
        Cmd::SlurmAgent { dir, idle } => {
            camu_core::executor::agent::run(&dir, std::time::Duration::from_secs_f64(idle))
                .map_err(|source| AppError::Agent { dir, source })
        }
        Cmd::Status {
            pipeline,
            sel,
            common,
        } => {
            let p = load(&pipeline)?;
            let mut engine = Engine::new(&p, read_only(options(&common, &sel)?))?;
            print_status(&engine.status()?, common.json);
            Ok(())
        }
        Cmd::Path {
            pipeline,
            stage,
            common,
        } => {
            let p = load(&pipeline)?;
            let name = stage_named(&p, &stage)?;
            let sel = Selection {
                targets: vec![name.clone()],
                select: Vec::new(),
                force: Vec::new(),
            };
            let mut engine = Engine::new(&p, read_only(options(&common, &sel)?))?;
            let row = engine.status()?.into_iter().find(|r| r.stage == name);
            match row {
                Some(camu_core::engine::StageStatus { out: Some(dir), .. }) => {
                    say!("{}", std::path::absolute(&dir).unwrap_or(dir).display());
                    Ok(())
                }
                Some(r) => Err(AppError::Usage(format!(
                    "stage `{name}` has no cached result for its current inputs: {}",
                    if r.reasons.is_empty() {
                        "run the pipeline first".to_string()
                    } else {
                        r.reasons.join("; ")
                    }
                ))),
                None => Err(AppError::Usage(format!("no stage `{name}`"))),
            }
        }
        Cmd::Report {
            pipeline,
            out,
            sel,
            common,
        } => {
            let p = load(&pipeline)?;
            let mut engine = Engine::new(&p, read_only(options(&common, &sel)?))?;
            let results = camu_lab::report::collect(&mut engine)?;
            let comparison = camu_lab::report::aggregate(&results);
            for r in &comparison.rejected {
                tracing::warn!("{r}");
            }
            // `...yaml` has the stem `..`: never a path out of reports/.
            let stem = pipeline
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .filter(|s| !s.is_empty() && s != "." && s != "..")
                .unwrap_or("report".into());
            let dir = out.unwrap_or_else(|| PathBuf::from("reports").join(&stem));
            let title = p
                .description
                .as_deref()
                .map(|d| format!("{stem}: {d}"))
                .unwrap_or(stem);
            let (files, skipped) = camu_lab::report::write_all(&comparison, &dir, &title)?;
            if common.json {
                let v = serde_json::json!({"comparison": comparison, "files": files, "skipped": skipped});
                say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                say!("{}", camu_lab::report::markdown(&comparison));
                eprintln!("wrote {} files to {}", files.len(), dir.display());
                for s in skipped {
                    eprintln!("skipped {s}");
                }
            }
            Ok(())
        }
        Cmd::Run(args) => run(args),
        Cmd::Gc {
            pipelines,
            dry_run,
            only,
            forget,
            common,
        } => gc(&pipelines, dry_run, only, &forget, &common),
    }
}

/// `camu-pipe run`.
fn run(args: RunArgs) -> Result<(), AppError> {
    let RunArgs {
        pipeline,
        sel,
        dry_run,
        keep_going,
        cpus,
        gpus,
        executor,
        partition,
        sbatch_args,
        slurm_poll,
        submit_rate,
        agent_cpus,
        jobs,
        common,
    } = args;
    let p = load(&pipeline)?;
    let mut opts = options(&common, &sel)?;
    opts.read_only = dry_run;
    opts.keep_going = keep_going;
    opts.jobs = jobs;
    opts.cpus = cpus.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    opts.gpus = gpus
        .map(|g| g.into_iter().filter(|s| !s.is_empty()).collect())
        .unwrap_or_else(detect_gpus);
    if let Some(why) = camu_core::process::gpu_ids_problem(&opts.gpus) {
        return Err(AppError::Usage(format!(
            "{why} (from --gpus, CAMU_GPUS or CUDA_VISIBLE_DEVICES)"
        )));
    }
    let mut engine = Engine::new(&p, opts)?;
    if matches!(executor, ExecutorKind::Local) {
        check_gpus(&engine)?;
        warn_cpus(&engine)?;
    }
    if dry_run {
        print_status(&engine.status()?, common.json);
        return Ok(());
    }
    check_worker_libtorch(&p)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, interrupted.clone());
    }
    let program = std::env::current_exe().map_err(AppError::Binary)?;
    let executor: Arc<dyn camu_core::executor::Executor> = match executor {
        ExecutorKind::Local => Arc::new(LocalExecutor { program }),
        ExecutorKind::Slurm => {
            let mut ex = SlurmExecutor::new(
                program,
                partition,
                sbatch_args,
                std::time::Duration::from_secs_f64(slurm_poll),
                std::time::Duration::from_secs_f64(1.0 / submit_rate),
            );
            ex.agent_cpus = agent_cpus;
            Arc::new(ex)
        }
    };
    let mut reporter = Reporter::new(common.json);
    let result = engine.run(executor, &mut reporter, interrupted);
    if let Ok(s) = &result {
        if common.json {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["event"] = "summary".into();
            say!("{v}");
        } else {
            eprintln!(
                "ran {}, cached {}, {:.1}s",
                s.ran.len(),
                s.cached.len(),
                s.seconds
            );
        }
    }
    Ok(result.map(|_| ())?)
}

/// `camu-pipe gc`: keeps what the given pipelines and every other registered one need.
fn gc(
    pipelines: &[PathBuf],
    dry_run: bool,
    only: bool,
    forget: &[PathBuf],
    common: &Common,
) -> Result<(), AppError> {
    // Nothing written since gc started, or by a run alive when it started, is deleted:
    // a run that finishes while gc works keeps everything it wrote.
    let started = std::time::SystemTime::now();
    let cache = if dry_run {
        camu_core::cache::Cache::open_read_only(&common.cache_dir)?
    } else {
        camu_core::cache::Cache::open(&common.cache_dir)?
    };
    let protect_from = cache.oldest_live_run().map_or(started, |t| t.min(started));
    let mut keep = std::collections::HashSet::new();
    for path in pipelines {
        let p = load(path)?;
        let lock = camu_core::cache::lockfile::LockFile::read(&p.path);
        keep.extend(lock.stages.values().map(|e| e.key.clone()));
        let sel = Selection {
            targets: vec![],
            select: vec![],
            force: vec![],
        };
        let mut engine = Engine::new(&p, read_only(options(common, &sel)?))?;
        keep.extend(engine.status()?.into_iter().filter_map(|s| s.key));
    }
    let given: Vec<PathBuf> = pipelines
        .iter()
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    let forget: Vec<PathBuf> = forget
        .iter()
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    for p in &forget {
        if !dry_run && !cache.forget_pipeline(p)? {
            tracing::warn!("--forget {}: not a registered pipeline", p.display());
        }
    }
    let others: Vec<PathBuf> = cache
        .registered_pipelines()
        .into_iter()
        .filter(|p| !given.contains(p) && !forget.contains(p))
        .collect();
    if !only {
        // What another pipeline needs is in its lock file; one that cannot be read
        // stops gc rather than reading as "needs nothing".
        let needs = camu_core::cache::lockfile::needs_of(&others).map_err(|e| {
            AppError::GcRefused(format!(
                "gc deleted nothing: {e}\nrun them again (which rewrites their lock files), or pass --forget PIPELINE for each one whose results may go (--only keeps only the given pipelines' results)"
            ))
        })?;
        keep.extend(needs);
        if !others.is_empty() && !common.json {
            eprintln!(
                "also keeping what {} other pipeline(s) using this cache reference (--only to drop that): {}",
                others.len(),
                others
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let report = cache.gc(&keep, dry_run, protect_from)?;
    if common.json {
        say!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        let verb = if dry_run { "would free" } else { "freed" };
        say!(
            "{verb} {:.1} MiB: {} entries, {} objects ({} entries kept)",
            report.bytes as f64 / (1 << 20) as f64,
            report.entries.len(),
            report.objects,
            keep.len()
        );
    }
    Ok(())
}

/// Colours only on a terminal, and never with `NO_COLOR` set: a warning redirected to a file
/// must read as text.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(&cli.command, Cmd::Run(RunArgs { common, .. }) | Cmd::Status { common, .. } | Cmd::Report { common, .. } | Cmd::Gc { common, .. } | Cmd::Path { common, .. } if common.json);
    if !matches!(cli.command, Cmd::ExecStage { .. }) {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_ansi(colour())
            .with_writer(std::io::stderr)
            .try_init();
    }
    match main_inner(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                AppError::Engine(camu_core::engine::EngineError::Spec(se)) => {
                    eprint!("{}", se.render(colour()))
                }
                other => eprintln!("error: {other}"),
            }
            if json {
                say!(
                    "{}",
                    serde_json::json!({"event": "error", "code": e.exit_code(), "message": e.to_string()})
                );
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command-line number that is not a finite positive one.
#[derive(Debug, thiserror::Error)]
#[error("expected a number above 0, got `{0}`")]
struct NotPositive(String);

/// A finite number above 0 (seconds, or a rate).
fn positive_seconds(s: &str) -> Result<f64, NotPositive> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x < 1e6 => Ok(x),
        _ => Err(NotPositive(s.to_string())),
    }
}
