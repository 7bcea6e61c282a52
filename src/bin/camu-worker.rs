//! The ML stage worker: `camu-worker exec-stage JOB.json` runs one stage of an ML kind (download,
//! split, train, unlearn, evaluate). It is the only camu-pipe binary that links libtorch; the
//! `camu-pipe` command line starts it for those stages and never loads libtorch itself.

use camu_core::stage::StageJob;
use std::process::ExitCode;

/// Names the stage, its GPUs and its share when the failure is running out of GPU memory.
fn explain(job_file: &str, error: &str) -> String {
    if !error.contains("out of memory") {
        return error.to_string();
    }
    let Ok(job) = std::fs::read(job_file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<StageJob>(&b).map_err(|e| e.to_string()))
    else {
        return error.to_string();
    };
    if job.gpus.is_empty() {
        return error.to_string();
    }
    let share = match job.gpu_share {
        Some(f) => format!(" holding {f} of it (resources: {{gpus: {f}}})"),
        None => String::new(),
    };
    format!(
        "stage `{}` ran out of GPU memory on GPU {}{share}: {error}",
        job.stage,
        job.gpus.join(",")
    )
}

/// Keeps freed memory in the process instead of returning it to the kernel after every step.
///
/// A training step allocates and frees the same few megabytes of activations and gradients. With
/// glibc's defaults the top of the heap is trimmed (`brk`) after each free and faulted in again on
/// the next step: on the reference CNN that was about 460 `brk` calls a second and a fifth of the
/// stage's CPU time in the kernel. A high trim threshold and top pad keep those pages; a fixed
/// mmap threshold stops large buffers from being mapped and unmapped each step. Must run before
/// libtorch allocates anything.
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["exec-stage", job] => {
            // The stage process: stdout and stderr are the stage's log (a file: no colours).
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .try_init();
            match camu_core::stage::exec_job(job.as_ref(), camu_torch::stages::RUNNERS) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {}", explain(job, &e.to_string()));
                    ExitCode::FAILURE
                }
            }
        }
        // For scripts/mia-crosscheck.py: the reference attack's learner on exported sets.
        ["attack-accuracy", fit, eval] => match camu_torch::metrics::xgb::attack_accuracy(
            std::path::Path::new(fit),
            std::path::Path::new(eval),
        ) {
            Ok(a) => {
                println!("{a}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        // For scripts/audit-crosscheck.py: per-example epsilons, F and U-LiRA on exported
        // confidences (CSV: one row per model, one column per forget example).
        ["audit", retrained, unlearned] => match audit(retrained, unlearned) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        ["--version"] | ["-V"] => {
            println!("camu-worker {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: camu-worker exec-stage JOB.json\n       camu-worker attack-accuracy FIT.csv EVAL.csv\n       camu-worker audit RETRAINED.csv UNLEARNED.csv\n\nThe ML stage worker that `camu-pipe run` starts; not meant to be run by hand (attack-accuracy: for scripts/mia-crosscheck.py; audit: for scripts/audit-crosscheck.py)."
            );
            ExitCode::from(2)
        }
    }
}

/// Why the confidences of `camu-worker audit` cannot be read.
#[derive(Debug, thiserror::Error)]
enum RunsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {value} is not a finite confidence")]
    NotFinite {
        path: String,
        line: usize,
        value: f64,
    },
    #[error("{path}:{line}: {cell:?}: {source}")]
    Parse {
        path: String,
        line: usize,
        cell: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("{0}: no runs")]
    Empty(String),
    #[error("{0}: the runs have different numbers of examples")]
    Ragged(String),
    #[error("{retrained} holds {} runs of {} examples, {unlearned} {} of {}: they must match", shapes.0, shapes.1, shapes.2, shapes.3)]
    Mismatch {
        retrained: String,
        unlearned: String,
        shapes: (usize, usize, usize, usize),
    },
}

/// Reads one run per line of comma-separated confidences.
fn runs(path: &str) -> Result<Vec<Vec<f64>>, RunsError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunsError::Read {
        path: path.into(),
        source,
    })?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            l.split(',')
                .map(|v| match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(x),
                    Ok(value) => Err(RunsError::NotFinite {
                        path: path.into(),
                        line: i + 1,
                        value,
                    }),
                    Err(source) => Err(RunsError::Parse {
                        path: path.into(),
                        line: i + 1,
                        cell: v.to_string(),
                        source,
                    }),
                })
                .collect::<Result<Vec<f64>, RunsError>>()
        })
        .collect::<Result<_, _>>()?;
    match rows.first().map(Vec::len) {
        None => Err(RunsError::Empty(path.into())),
        Some(n) if rows.iter().any(|r| r.len() != n) => Err(RunsError::Ragged(path.into())),
        Some(_) => Ok(rows),
    }
}

fn audit(retrained: &str, unlearned: &str) -> Result<String, RunsError> {
    use camu_lab::audit;
    let (r, u) = (runs(retrained)?, runs(unlearned)?);
    if r.len() != u.len() || r[0].len() != u[0].len() {
        return Err(RunsError::Mismatch {
            retrained: retrained.into(),
            unlearned: unlearned.into(),
            shapes: (r.len(), r[0].len(), u.len(), u[0].len()),
        });
    }
    let eps = audit::epsilons(&r, &u);
    let ulira = audit::ulira(&r, &u);
    Ok(serde_json::json!({
        "models": r.len(),
        "epsilons": eps,
        "forgetting_quality": audit::forgetting_quality(&eps, r.len()),
        "ulira": ulira.map(|x| serde_json::json!({"accuracy": x.accuracy, "auc": x.auc,
            "tpr_at_fpr_1e2": x.tpr_at_fpr_1e2, "tpr_at_fpr_1e3": x.tpr_at_fpr_1e3, "guesses": x.guesses})),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn out_of_gpu_memory_names_the_stage_the_device_and_the_share() {
        let dir = std::env::temp_dir().join(format!("camu-worker-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let job = dir.join("job.json");
        let text = serde_json::json!({
            "stage": "train@seed=1", "kind": "train", "key": "k", "params": {},
            "inputs": {}, "out_dir": "/o", "workdir": "/w", "data_dir": "/d",
            "threads": 2, "gpus": ["3"], "gpu_share": 0.25
        });
        std::fs::write(&job, text.to_string()).unwrap();
        let path = job.to_str().unwrap();
        let e = explain(path, "CUDA out of memory. Tried to allocate 2.00 GiB");
        assert!(
            e.starts_with("stage `train@seed=1` ran out of GPU memory on GPU 3 holding 0.25 of it"),
            "{e}"
        );
        assert_eq!(explain(path, "shape mismatch"), "shape mismatch");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
