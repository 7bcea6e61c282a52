//! What a run tells its user: a live view on a terminal, plain lines otherwise, JSON events
//! (one object per line on stdout) for machines.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Plan {
        pipeline: String,
        stages: usize,
    },
    Cached {
        stage: String,
        key: String,
    },
    Waiting {
        stage: String,
        reason: String,
    },
    Started {
        stage: String,
        key: String,
        threads: usize,
        gpus: Vec<String>,
        reasons: Vec<String>,
    },
    Finished {
        stage: String,
        key: String,
        seconds: f64,
    },
    Failed {
        stage: String,
        error: String,
        log: String,
        tail: String,
    },
    /// An attempt failed and the stage runs again (`resources.retries`).
    Retrying {
        stage: String,
        attempt: u32,
        attempts: u32,
        error: String,
        log: String,
    },
    Skipped {
        stage: String,
        because: String,
    },
    Corrupt {
        stage: String,
        path: String,
        expected: String,
        actual: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Json,
    Live,
    Plain,
    /// Nothing printed (library use, benchmarks).
    Quiet,
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub struct Reporter {
    mode: Mode,
    bar: Option<ProgressBar>,
    running: Mutex<Vec<String>>,
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        };
        Reporter {
            mode,
            bar: None,
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn quiet() -> Reporter {
        Reporter {
            mode: Mode::Quiet,
            bar: None,
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Starts the live view for a run of `total` stages.
    pub fn start(&mut self, total: usize) {
        if self.mode == Mode::Live {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {pos}/{len} stages {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn emit(&self, event: Event) {
        if self.mode == Mode::Quiet {
            return;
        }
        if self.mode == Mode::Json {
            #[derive(Serialize)]
            struct Stamped<'a> {
                ts: f64,
                #[serde(flatten)]
                event: &'a Event,
            }
            let line = serde_json::to_string(&Stamped {
                ts: now(),
                event: &event,
            })
            .unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match &event {
            Event::Plan { pipeline, stages } => self.line(format!("{pipeline}: {stages} stages")),
            Event::Cached { stage, .. } => {
                self.tick();
                if self.mode == Mode::Plain {
                    self.line(format!("cached   {stage}"));
                }
            }
            Event::Waiting { stage, reason } => self.line(format!("waiting  {stage}: {reason}")),
            Event::Started { stage, threads, gpus, reasons, .. } => {
                running.push(stage.clone());
                let gpu = if gpus.is_empty() { String::new() } else { format!(", gpus {}", gpus.join(",")) };
                let why = reasons.first().map(|r| format!(" ({r})")).unwrap_or_default();
                self.line(format!("start    {stage} [{threads} threads{gpu}]{why}"));
            }
            Event::Finished { stage, seconds, .. } => {
                running.retain(|s| s != stage);
                self.tick();
                self.line(format!("done     {stage} in {seconds:.1}s"));
            }
            Event::Failed { stage, error, log, tail } => {
                running.retain(|s| s != stage);
                self.tick();
                let log = if log.is_empty() {
                    String::new()
                } else {
                    format!("\n         log: {log}")
                };
                self.line(format!("FAILED   {stage}: {error}{log}\n{tail}"));
            }
            Event::Retrying { stage, attempt, attempts, error, log } => self.line(format!(
                "retry    {stage}: attempt {attempt} of {attempts} failed: {error} (its log: {log})"
            )),
            Event::Skipped { stage, because } => {
                self.tick();
                self.line(format!("skipped  {stage}: {because}"));
            }
            Event::Corrupt { stage, path, expected, actual } => self.line(format!(
                "corrupt  {stage}: {path} has hash {actual}, expected {expected}; discarded, recomputing"
            )),
        }
        if let Some(b) = &self.bar {
            b.set_message(if running.is_empty() {
                String::new()
            } else {
                format!("running: {}", running.join(", "))
            });
        }
    }

    /// Live view only: shows each running stage with the last progress line of its log.
    pub fn show_running(&self, logs: &[(String, std::path::PathBuf)]) {
        let Some(b) = &self.bar else { return };
        let parts: Vec<String> = logs
            .iter()
            .map(|(stage, log)| match last_progress(log) {
                Some(p) => format!("{stage}: {p}"),
                None => stage.clone(),
            })
            .collect();
        b.set_message(parts.join(" | "));
    }

    fn tick(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
}

/// Progress inside a stage process: a bar when stderr is a terminal; otherwise a `progress:` line
/// in the stage log at every 10%, which the parent's live view shows next to the stage.
pub struct StageProgress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    unit: &'static str,
    state: Mutex<(u64, String)>,
}

impl StageProgress {
    pub fn new(label: &str, total: u64, unit: &'static str) -> StageProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        StageProgress {
            bar,
            label: label.to_string(),
            total,
            unit,
            state: Mutex::new((u64::MAX, String::new())),
        }
    }

    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let decile = (pos * 10).checked_div(self.total).unwrap_or(pos >> 24);
        if decile != st.0 {
            st.0 = decile;
            let pct = match (pos * 100).checked_div(self.total) {
                Some(p) => format!("{p}%"),
                None => format!("{pos} {}", self.unit),
            };
            eprintln!("progress: {} {pct} {}", self.label, st.1);
        }
    }

    pub fn set_message(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        } else {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = msg;
        }
    }

    /// Ends the bar; off a terminal, prints a final line with `summary`.
    pub fn finish_with(&self, summary: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(summary.to_string()),
            None => eprintln!("progress: {} done {summary}", self.label),
        }
    }

    pub fn finish(&self) {
        self.finish_with("");
    }
}

/// The last `progress:` line of a stage log, for the live view.
pub fn last_progress(log: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(2048))).ok()?;
    let mut tail = String::new();
    f.take(2048).read_to_string(&mut tail).ok()?;
    tail.lines()
        .rev()
        .find_map(|l| l.strip_prefix("progress: ").map(|s| s.trim().to_string()))
}
