//! Reading a stage's inputs and writing its metrics: what every runner needs.

use super::{StageError, StageJob};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The upstream output directory holding `file`: the one named by parameter `role` if given,
/// otherwise the only input that has the file.
pub fn input_with(job: &StageJob, file: &str, role: Option<&str>) -> Result<PathBuf, StageError> {
    input(job, file, role).map_err(StageError::Input)
}

fn input(job: &StageJob, file: &str, role: Option<&str>) -> Result<PathBuf, String> {
    let has = |d: &PathBuf| d.join(file).exists();
    if let Some(name) = role {
        let hits: Vec<(&String, &PathBuf)> = job
            .inputs
            .iter()
            .filter(|(k, _)| *k == name || k.split('@').next() == Some(name))
            .collect();
        return match hits.as_slice() {
            [(_, d)] if has(d) => Ok((*d).clone()),
            [(k, _)] => Err(format!("input `{k}` has no {file}")),
            [] => Err(format!("no input named `{name}` (inputs: {})", names(job))),
            _ => Err(format!(
                "`{name}` matches several inputs; use the full expanded name"
            )),
        };
    }
    let hits: Vec<(&String, &PathBuf)> = job.inputs.iter().filter(|(_, d)| has(d)).collect();
    match hits.as_slice() {
        [(_, d)] => Ok((*d).clone()),
        [] => Err(format!("no input provides {file} (inputs: {})", names(job))),
        many => Err(format!(
            "several inputs provide {file} ({}); name the one to use in `with`",
            many.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The cache key of an upstream output directory: executors hand inputs over as `out/KEY`.
pub fn input_key(dir: &std::path::Path) -> Option<String> {
    dir.file_name().map(|k| k.to_string_lossy().to_string())
}

fn names(job: &StageJob) -> String {
    if job.inputs.is_empty() {
        "none".into()
    } else {
        job.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Writes metrics.json into the stage's output directory.
pub fn write_metrics(job: &StageJob, metrics: &Map<String, Value>) -> Result<(), StageError> {
    write_json(job, "metrics.json", metrics)
}

/// Writes `value` as pretty JSON to `file` in the stage's output directory.
pub fn write_json(
    job: &StageJob,
    file: &str,
    value: &impl serde::Serialize,
) -> Result<(), StageError> {
    let path = job.out_dir.join(file);
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StageError::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, bytes).map_err(|source| StageError::Io {
        action: "write",
        path,
        source,
    })
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, StageError> {
    let path = path.to_path_buf();
    let bytes = std::fs::read(&path).map_err(|source| StageError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StageError::Json { path, source })
}
