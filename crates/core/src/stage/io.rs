//! Reading a stage's inputs and writing its metrics: what every runner needs.

use super::{StageError, StageJob};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Why a stage cannot find an upstream output it needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("input `{input}` has no {file}")]
    Lacks { input: String, file: String },
    #[error("no input named `{name}` (inputs: {inputs})")]
    NoSuchInput { name: String, inputs: String },
    #[error("`{name}` matches several inputs; use the full expanded name")]
    Ambiguous { name: String },
    #[error("no input provides {file} (inputs: {inputs})")]
    NoneProvides { file: String, inputs: String },
    #[error("several inputs provide {file} ({inputs}); name the one to use in `with`")]
    SeveralProvide { file: String, inputs: String },
}

/// The upstream output directory holding `file`: the one named by parameter `role` if given,
/// otherwise the only input that has the file.
pub fn input_with(job: &StageJob, file: &str, role: Option<&str>) -> Result<PathBuf, StageError> {
    Ok(input(job, file, role)?)
}

fn input(job: &StageJob, file: &str, role: Option<&str>) -> Result<PathBuf, InputError> {
    let has = |d: &PathBuf| d.join(file).exists();
    if let Some(name) = role {
        return match job.inputs_named(name).as_slice() {
            [(_, i)] if has(&i.dir) => Ok(i.dir.clone()),
            [(k, _)] => Err(InputError::Lacks {
                input: k.to_string(),
                file: file.into(),
            }),
            [] => Err(InputError::NoSuchInput {
                name: name.into(),
                inputs: names(job),
            }),
            _ => Err(InputError::Ambiguous { name: name.into() }),
        };
    }
    let hits: Vec<(&String, &PathBuf)> = job
        .inputs
        .iter()
        .map(|(k, i)| (k, &i.dir))
        .filter(|(_, d)| has(d))
        .collect();
    match hits.as_slice() {
        [(_, d)] => Ok((*d).clone()),
        [] => Err(InputError::NoneProvides {
            file: file.into(),
            inputs: names(job),
        }),
        many => Err(InputError::SeveralProvide {
            file: file.into(),
            inputs: many
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
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
