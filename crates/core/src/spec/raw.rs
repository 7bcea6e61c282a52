//! The pipeline file as written: serde types with spans, before matrix expansion.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Free text shown by `status`.
    #[serde(default)]
    pub description: Option<String>,
    /// Applied to every stage unless the stage overrides it.
    #[serde(default)]
    pub defaults: RawDefaults,
    pub stages: IndexMap<String, Spanned<RawStage>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Parameters merged (shallowly) under every stage's `with`.
    #[serde(default)]
    pub with: Option<Spanned<IndexMap<String, Value>>>,
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// CPU threads and GPUs one stage occupies while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "one")]
    pub cpus: usize,
    #[serde(default)]
    pub gpus: usize,
}

fn one() -> usize {
    1
}

impl Default for Resources {
    fn default() -> Self {
        Resources { cpus: 1, gpus: 0 }
    }
}

/// A program line: a string runs through `sh -c`, a list is executed directly.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub kind: Spanned<String>,
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    #[serde(default)]
    pub with: Option<Spanned<IndexMap<String, Value>>>,
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Variables to expand over: the stage becomes one instance per combination.
    #[serde(default)]
    pub matrix: Option<Spanned<IndexMap<String, Vec<Value>>>>,
    /// Combinations (partial bindings) left out of the matrix.
    #[serde(default)]
    pub exclude: Vec<Spanned<IndexMap<String, Value>>>,
    // `command` kind fields.
    #[serde(default)]
    pub command: Option<Spanned<RawCommand>>,
    /// Files (relative to the pipeline file) whose content is part of the cache key.
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    /// Paths (relative to the output directory) the command must produce.
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
}
