//! Unlearning methods written in PyTorch: `with: {method: {python: SCRIPT}}` on an `unlearn`
//! stage. The script defines `unlearn(ctx)`; the `camu_pipe` Python package (`python/`, built into
//! this program so a stage always runs with the package its binary was built with) gives it the
//! stage's data, model and parameters. The stage is keyed by the script, the local modules it
//! declares and the package's content.

use camu_core::params::ParamError;
use camu_core::stage::io::{input_with, read_json, write_metrics};
use camu_core::stage::{StageError, StageJob};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `camu_pipe` package's files, as this program was built with them.
pub const PACKAGE: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../python/camu_pipe/__init__.py"),
    ),
    ("data.py", include_str!("../../../python/camu_pipe/data.py")),
    (
        "models.py",
        include_str!("../../../python/camu_pipe/models.py"),
    ),
    (
        "stage.py",
        include_str!("../../../python/camu_pipe/stage.py"),
    ),
];

/// How the package's content appears among a stage's key inputs.
pub const PACKAGE_KEY: &str = "<camu_pipe Python package>";

/// The blake3 hash of the package's files.
pub fn package_hash() -> String {
    let mut all = String::new();
    for (name, text) in PACKAGE {
        all.push_str(name);
        all.push('\0');
        all.push_str(text);
        all.push('\0');
    }
    camu_core::cache::hash_bytes(all.as_bytes())
}

/// A method given as a script: `method: {python: SCRIPT, modules: [FILES], name: NAME}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonMethod {
    /// The script, relative to the pipeline file.
    pub script: String,
    /// Local files the script imports, keyed with it.
    pub modules: Vec<String>,
    /// The method's name in records and reports (default: the script's file stem).
    pub name: String,
}

impl PythonMethod {
    /// The method `method:` describes, if it is an object (a Python method).
    pub fn parse(method: &Value) -> Option<Result<PythonMethod, ParamError>> {
        let Value::Object(m) = method else {
            return None;
        };
        Some(Self::from_map(m))
    }

    fn from_map(m: &Map<String, Value>) -> Result<PythonMethod, ParamError> {
        camu_core::params::check_keys(m, &["python", "modules", "name"])
            .map_err(|e| ParamError::Invalid(format!("in `method`: {e}")))?;
        let script = match m.get("python") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(v) => {
                return Err(ParamError::Invalid(format!(
                    "`method.python` must be the path of a Python script, got {v}"
                )));
            }
            None => {
                return Err(ParamError::Invalid(
                    "`method` as a mapping needs `python: SCRIPT` (a method written in Python)"
                        .into(),
                ));
            }
        };
        let modules = match m.get("modules") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ParamError::Invalid(format!(
                            "`method.modules` must list file paths, got {v}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(ParamError::Invalid(format!(
                    "`method.modules` must be a list of file paths, got {v}"
                )));
            }
        };
        let stem = Path::new(&script)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = match m.get("name") {
            None => stem,
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                return Err(ParamError::Invalid(format!(
                    "`method.name` must be a string, got {v}"
                )));
            }
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !plain(&name) {
            return Err(ParamError::Invalid(format!(
                "method name `{name}` must be 1 to 64 letters, digits, `_` or `-` (set `method.name`)"
            )));
        }
        if crate::methods::lookup(&name).is_some() {
            return Err(ParamError::Invalid(format!(
                "method name `{name}` is a built-in method's; give the Python method another (`method.name`)"
            )));
        }
        Ok(PythonMethod {
            script,
            modules,
            name,
        })
    }

    /// The script and the modules: what the stage's key hashes.
    pub fn files(&self) -> Vec<String> {
        let mut v = vec![self.script.clone()];
        v.extend(self.modules.iter().cloned());
        v
    }
}

/// The Python environment scripts/setup.sh provisions (torch 2.11.0 for CPU use), if it exists.
fn provisioned() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    let home = env("CAMU_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("camu-pipe")))
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache/camu-pipe")))?;
    let py = home.join("python-torch-2.11.0-cpu/bin/python");
    (home.join("python-torch-2.11.0-cpu/.complete").is_file() && py.is_file())
        .then(|| py.display().to_string())
}

/// The interpreter a stage runs: `python:` (a path relative to the pipeline's directory when it
/// names a directory), else `$CAMU_PYTHON`, else the environment scripts/setup.sh provisions,
/// else `python3` on PATH; and whether it is that CPU-only environment.
fn interpreter(job: &StageJob) -> (PathBuf, bool) {
    let prov = provisioned();
    let chosen = job
        .python
        .clone()
        .or_else(|| std::env::var("CAMU_PYTHON").ok().filter(|s| !s.is_empty()))
        .or_else(|| prov.clone())
        .unwrap_or_else(|| "python3".into());
    let cpu_only = prov.as_deref() == Some(chosen.as_str());
    let p = PathBuf::from(&chosen);
    if p.is_relative() && chosen.contains('/') {
        (job.workdir.join(p), cpu_only)
    } else {
        (p, cpu_only)
    }
}

/// Why a Python method's stage failed.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("python method `{method}`: cannot read {file}: {source}")]
    Read {
        method: String,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "python method `{method}`: {file} changed after this run computed the stage's key; run again"
    )]
    Changed { method: String, file: String },
    #[error("python method `{method}`: cannot start the interpreter `{}`: {source} (set `python:` on the stage or the pipeline, or CAMU_PYTHON)", python.display())]
    Start {
        method: String,
        python: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The script failed; `cause` is its own account (its error.json) or how it exited.
    #[error("python method `{method}` ({script}): {cause}")]
    Failed {
        method: String,
        script: String,
        cause: String,
    },
    #[error("python method `{method}` ({script}): no {file} was written")]
    Missing {
        method: String,
        script: String,
        file: &'static str,
    },
}

impl From<PythonError> for StageError {
    fn from(e: PythonError) -> Self {
        StageError::Kind(Box::new(e))
    }
}

/// Runs a Python method's `unlearn` stage: writes the package and the stage's context beside
/// its output directory, runs `python -m camu_pipe.stage`, and records what it measured.
pub fn run(
    job: &StageJob,
    method: &PythonMethod,
    params: Map<String, Value>,
) -> Result<(), StageError> {
    let stage_dir = job
        .out_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| job.out_dir.clone());
    let work = stage_dir.join("python");
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StageError::Io {
            action,
            path,
            source,
        }
    };
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io("clear", &work))?;
    }
    let pkg = work.join("camu_pipe");
    std::fs::create_dir_all(&pkg).map_err(io("create", &pkg))?;
    for (name, text) in PACKAGE {
        let p = pkg.join(name);
        std::fs::write(&p, text).map_err(io("write", &p))?;
    }
    let role = |k: &str| job.params.get(k).and_then(Value::as_str);
    let dataset = input_with(job, "dataset.json", None)?;
    let split = input_with(job, "split.json", role("split"))?.join("split.json");
    let original = input_with(job, "model.safetensors", role("original"))?;
    let original_record: Map<String, Value> =
        read_json(&original.join("metrics.json")).unwrap_or_default();
    // The files must be those the key was computed with: an edit after the run planned this
    // stage would otherwise be cached under the old content's key.
    let mut hashes = serde_json::Map::new();
    for f in method.files() {
        let now = camu_core::cache::hash_file(&job.workdir.join(&f)).map_err(|source| {
            PythonError::Read {
                method: method.name.clone(),
                file: f.clone(),
                source,
            }
        })?;
        if let Some(planned) = job.input_hashes.get(&f)
            && *planned != now
        {
            return Err(PythonError::Changed {
                method: method.name.clone(),
                file: f,
            }
            .into());
        }
        hashes.insert(f, json!(now));
    }
    let script = job.workdir.join(&method.script);
    let seed = job.params.get("seed").and_then(Value::as_i64).unwrap_or(0);
    let (python, cpu_only) = interpreter(job);
    if cpu_only && !job.gpus.is_empty() {
        tracing::warn!(
            "the stage was given GPU {} but runs in set-up's CPU-only Python environment; set `python:` to an interpreter whose torch has CUDA",
            job.gpus.join(",")
        );
    }
    let context = json!({
        "stage": job.stage,
        "key": job.key,
        "method": method.name,
        "script": script,
        "params": params,
        "seed": seed,
        "device": job.params.get("device").and_then(Value::as_str).unwrap_or("auto"),
        "threads": job.threads,
        "gpus": job.gpus,
        "gpu_share": job.gpu_share,
        "out_dir": job.out_dir,
        "dataset": dataset,
        "split": split,
        "original": original,
        "original_record": original_record,
        "workdir": job.workdir,
        "cpu_only": cpu_only,
    });
    let ctx_path = work.join("context.json");
    let bytes = serde_json::to_vec_pretty(&context).map_err(|source| StageError::Json {
        path: ctx_path.clone(),
        source,
    })?;
    std::fs::write(&ctx_path, bytes).map_err(io("write", &ctx_path))?;

    let mut path = std::ffi::OsString::from(&work);
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    tracing::info!(method = %method.name, script = %method.script, python = %python.display(), "running a Python method");
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "camu_pipe.stage"])
        .arg(&ctx_path)
        // `-m` puts the working directory first on the path: the built-in package's directory,
        // so no `camu_pipe` beside the pipeline shadows it (stage.py then moves to `workdir`).
        .current_dir(&work)
        .env("PYTHONPATH", path)
        // Importing the script must not write __pycache__ beside it: nothing outside the cache
        // is modified.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    if cpu_only {
        // The provisioned environment's CUDA libraries are empty stand-ins: it must not see a GPU.
        cmd.env("CUDA_VISIBLE_DEVICES", "");
    }
    let status = cmd.status().map_err(|source| PythonError::Start {
        method: method.name.clone(),
        python: python.clone(),
        source,
    })?;
    if !status.success() {
        let err: Map<String, Value> = read_json(&work.join("error.json")).unwrap_or_default();
        let cause = match err.get("cause").and_then(Value::as_str) {
            Some(c) => c.to_string(),
            None => match status.code() {
                Some(c) => format!(
                    "{} exited with status {c} (the stage log has its output)",
                    python.display()
                ),
                None => format!("{} was killed ({status})", python.display()),
            },
        };
        return Err(PythonError::Failed {
            method: method.name.clone(),
            script: method.script.clone(),
            cause,
        }
        .into());
    }
    let result: Map<String, Value> = read_json(&work.join("result.json"))?;
    for f in ["model.safetensors", "model.json"] {
        if !job.out_dir.join(f).is_file() {
            return Err(PythonError::Missing {
                method: method.name.clone(),
                script: method.script.clone(),
                file: f,
            }
            .into());
        }
    }
    let mut metrics = Map::new();
    if let Some(Value::Object(details)) = result.get("details") {
        metrics.extend(details.clone());
    }
    for k in [
        "hyperparameters",
        "unlearn_time_s",
        "device",
        "python",
        "python_version",
        "torch_version",
    ] {
        if let Some(v) = result.get(k) {
            metrics.insert(k.into(), v.clone());
        }
    }
    metrics.insert("method".into(), json!(method.name));
    metrics.insert(
        "source".into(),
        json!({
            "python": method.script,
            "blake3": hashes[&method.script],
            "modules": method.modules.iter().map(|m| json!({"path": m, "blake3": hashes[m]})).collect::<Vec<_>>(),
            "package_blake3": package_hash(),
        }),
    );
    metrics.insert("threads".into(), json!(job.threads));
    if job.params.contains_key("from") {
        metrics.insert("selected".into(), Value::Object(params));
    }
    // The package and context are scaffolding, not results.
    let _ = std::fs::remove_dir_all(&work);
    write_metrics(job, &metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let m = PythonMethod::parse(
            &json!({"python": "methods/ft.py", "modules": ["methods/util.py"]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.name, "ft");
        assert_eq!(m.files(), ["methods/ft.py", "methods/util.py"]);
        assert!(PythonMethod::parse(&json!("camu")).is_none());
        for bad in [
            json!({}),
            json!({"python": ""}),
            json!({"python": 3}),
            json!({"python": "finetune.py"}),
            json!({"python": "x.py", "modules": "y.py"}),
            json!({"python": "x.py", "name": "a b"}),
            json!({"python": "x.py", "other": 1}),
        ] {
            assert!(PythonMethod::parse(&bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_package_hash_covers_every_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/camu_pipe");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().to_string();
                n.ends_with(".py").then_some(n)
            })
            .collect();
        on_disk.sort();
        let built: Vec<&str> = PACKAGE.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            on_disk, built,
            "every module of python/camu_pipe is built in"
        );
    }
}
