//! What the spec layer needs to know about a stage kind, and the registry of kinds a program
//! knows. The registry is built by the program (the CLI, the ML worker) and passed in: this crate
//! declares only `command`.

use crate::params::ParamError;
use serde_json::{Map, Value};

/// A stage kind as the planner sees it: name, version, parameter validation, and which program
/// runs its stage process. The run itself is a `stage::Runner`, possibly in another
/// binary.
pub trait Kind: Sync {
    fn name(&self) -> &'static str;
    /// The kind's version for a stage with `params`, part of its key: bump it when a change to
    /// the code changes the kind's results. Kinds that dispatch on a parameter (`unlearn`'s
    /// method) fold the version of what they dispatch to into it; it is the one version a record
    /// and its provenance name.
    fn version(&self, params: &Map<String, Value>) -> u32;
    /// True for kinds that take `command`, `inputs`, `outputs` and `env`.
    fn is_command(&self) -> bool {
        false
    }
    /// Checks `with` before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError>;
    /// The binary, next to the running one, whose `exec-stage` runs this kind's stage process;
    /// `None` for the running binary itself.
    fn worker(&self) -> Option<&'static str> {
        None
    }
    /// Whether stages that need this one depend on its outputs alone and not on its key
    /// ("early cutoff"): a `select` stage re-run over a new trial that does not win writes the
    /// same choice, and what uses the choice stays cached.
    fn cutoff(&self) -> bool {
        false
    }
    /// Files a stage of this kind writes that others find by name among their inputs (e.g.
    /// `dataset.json`).
    fn provides(&self) -> &'static [&'static str] {
        &[]
    }
    /// Files (relative to the pipeline's directory) whose content is part of a stage's key beside
    /// its declared `inputs`: e.g. the script of a method written in Python.
    fn key_files(&self, _params: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
    /// Code built into the program that a stage runs and whose changes change its results, as
    /// (name, content hash): e.g. the Python package a method's script runs with.
    fn key_content(&self, _params: &Map<String, Value>) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Whether a stage with these parameters runs a Python interpreter (`python:` applies).
    fn runs_python(&self, _params: &Map<String, Value>) -> bool {
        false
    }
    /// Files a stage of this kind reads from its needs, so a pipeline that cannot supply them
    /// fails validation instead of the run.
    fn requires(&self, _params: &Map<String, Value>) -> Vec<Requirement> {
        Vec::new()
    }
    /// Checks of how a stage's needs are set up that only the whole pipeline can answer (a
    /// `select` whose trials were evaluated on the test part, say). `need` finds a stage by its
    /// expanded name. Each message becomes a planning error at the stage.
    fn check_needs<'a>(
        &self,
        _stage: &'a super::Stage,
        _need: &dyn Fn(&str) -> Option<&'a super::Stage>,
    ) -> Vec<String> {
        Vec::new()
    }
}

/// A file a stage reads from one of its needs: from the need that `with` names under `role`
/// when it does, otherwise from the only need that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub file: &'static str,
    /// The `with` parameter that may name the need.
    pub role: Option<&'static str>,
    /// The need `with` names, if it does.
    pub named: Option<String>,
    /// Whether the name may match several needs (instances of one matrix stage), each read.
    pub several: bool,
}

impl Requirement {
    /// Read from the only need that provides `file`.
    pub fn any(file: &'static str) -> Self {
        Requirement {
            file,
            role: None,
            named: None,
            several: false,
        }
    }
    /// Read from the need named by `params[role]`, or (absent or null) the only one with `file`.
    pub fn named_by(file: &'static str, role: &'static str, params: &Map<String, Value>) -> Self {
        Requirement {
            file,
            role: Some(role),
            named: params.get(role).and_then(Value::as_str).map(str::to_string),
            several: false,
        }
    }
    /// Like [`Requirement::named_by`], but the name may match several needs, all of which must
    /// write `file` (e.g. retrain evaluated on each tuning seed).
    pub fn named_by_each(
        file: &'static str,
        role: &'static str,
        params: &Map<String, Value>,
    ) -> Self {
        Requirement {
            several: true,
            ..Requirement::named_by(file, role, params)
        }
    }
}

/// The kinds a pipeline may use.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<&'static dyn Kind>,
}

impl Registry {
    pub fn new(kinds: impl IntoIterator<Item = &'static dyn Kind>) -> Registry {
        Registry {
            kinds: kinds.into_iter().collect(),
        }
    }
    /// `command` only: what the engine's own tests use.
    pub fn core() -> Registry {
        Registry::new([&Command as &dyn Kind])
    }
    pub fn with(mut self, kinds: impl IntoIterator<Item = &'static dyn Kind>) -> Registry {
        self.kinds.extend(kinds);
        self
    }
    pub fn lookup(&self, name: &str) -> Option<&'static dyn Kind> {
        self.kinds.iter().copied().find(|k| k.name() == name)
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }
}

/// `command`: runs any external program (the run is `stage::command`). Its parameters
/// are free-form: they reach the program as `CAMU_PARAMS`.
pub struct Command;

impl Kind for Command {
    fn name(&self) -> &'static str {
        "command"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        // 2: shell commands run in strict mode (`bash -euo pipefail`).
        2
    }
    fn is_command(&self) -> bool {
        true
    }
    fn validate(&self, _params: &Map<String, Value>) -> Result<(), ParamError> {
        Ok(())
    }
}
