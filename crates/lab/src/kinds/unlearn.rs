//! `unlearn`: runs one unlearning method on the original model. unlearn_time_s is the wall time of
//! the method alone (data already in memory; no evaluation).

use crate::methods::{self, Method};
use crate::python::{self, PythonMethod};
use camu_core::params::{ParamError, Params};
use camu_core::spec::{Kind, Requirement};
use serde_json::{Map, Value};

pub struct Unlearn;

/// Keys every method accepts; the rest belong to the method.
const COMMON: &[&str] = &["method", "seed", "device", "original", "split", "from"];

/// The method's own parameters: `with` without the keys every method accepts.
pub fn method_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| !COMMON.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The method's parameters with the values a `select` stage chose (its `selected.json`) on top:
/// what an `unlearn` stage with `from: SELECT` runs with.
pub fn with_selection(
    params: &Map<String, Value>,
    selected: &Map<String, Value>,
) -> Result<Map<String, Value>, ParamError> {
    let mut mp = method_params(params);
    match selected.get("values") {
        Some(Value::Object(values)) => {
            for (k, v) in values {
                mp.insert(k.clone(), v.clone());
            }
        }
        _ => {
            return Err(ParamError::Invalid(format!(
                "the selection chose no values ({})",
                selected
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or("no `values` in selected.json")
            )));
        }
    }
    if let Chosen::Builtin(m) = method(params)? {
        m.validate(&mp).map_err(|e| ParamError::Method {
            method: m.name().to_string(),
            source: Box::new(e),
        })?;
    }
    Ok(mp)
}

/// What `method` names: a built-in method, or a script written in PyTorch.
pub enum Chosen {
    Builtin(&'static dyn Method),
    Python(PythonMethod),
}

impl Chosen {
    pub fn name(&self) -> &str {
        match self {
            Chosen::Builtin(m) => m.name(),
            Chosen::Python(p) => &p.name,
        }
    }
}

/// The method the parameters name.
pub fn method(params: &Map<String, Value>) -> Result<Chosen, ParamError> {
    if let Some(p) = params.get("method").and_then(PythonMethod::parse) {
        return p.map(Chosen::Python);
    }
    let name = Params::required("method", Params(params).opt_str("method")?)?;
    methods::lookup(name).map(Chosen::Builtin).ok_or_else(|| {
        ParamError::Invalid(format!(
            "unknown method `{name}` (known: {}; or `{{python: SCRIPT}}` for a method written in PyTorch)",
            methods::names().join(", ")
        ))
    })
}

impl Kind for Unlearn {
    fn name(&self) -> &'static str {
        "unlearn"
    }
    /// 1000 for the kind (version 1), plus the built-in method's version; a Python method is
    /// keyed by its files and the package instead (`key_files`, `key_content`).
    fn version(&self, params: &Map<String, Value>) -> u32 {
        match method(params) {
            Ok(Chosen::Builtin(m)) => 1000 + m.version(),
            _ => 1000,
        }
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        let m = method(params)?;
        Params(params).i64("seed", 0)?;
        Params(params).opt_str("from")?;
        Params(params).opt_str("device")?;
        match m {
            Chosen::Builtin(m) => {
                m.validate(&method_params(params))
                    .map_err(|e| ParamError::Method {
                        method: m.name().to_string(),
                        source: Box::new(e),
                    })
            }
            // A script's parameters are its own: it reads them with `ctx.param`.
            Chosen::Python(_) => Ok(()),
        }
    }
    fn key_files(&self, params: &Map<String, Value>) -> Vec<String> {
        match method(params) {
            Ok(Chosen::Python(p)) => p.files(),
            _ => Vec::new(),
        }
    }
    fn key_content(&self, params: &Map<String, Value>) -> Vec<(String, String)> {
        match method(params) {
            Ok(Chosen::Python(_)) => vec![(python::PACKAGE_KEY.into(), python::package_hash())],
            _ => Vec::new(),
        }
    }
    fn runs_python(&self, params: &Map<String, Value>) -> bool {
        matches!(method(params), Ok(Chosen::Python(_)))
    }
    fn provides(&self) -> &'static [&'static str] {
        &["model.safetensors"]
    }
    fn requires(&self, params: &Map<String, Value>) -> Vec<Requirement> {
        let mut r = vec![
            Requirement::any("dataset.json"),
            Requirement::named_by("split.json", "split", params),
            Requirement::named_by("model.safetensors", "original", params),
        ];
        if params.contains_key("from") {
            r.push(Requirement::named_by("selected.json", "from", params));
        }
        r
    }
    fn worker(&self) -> Option<&'static str> {
        Some(super::WORKER)
    }
    /// `from: SELECT`: every variable the selection sets is a parameter the method accepts.
    fn check_needs<'a>(
        &self,
        stage: &'a camu_core::spec::Stage,
        need: &dyn Fn(&str) -> Option<&'a camu_core::spec::Stage>,
    ) -> Vec<String> {
        let Ok(Some(from)) = Params(&stage.params).opt_str("from") else {
            return Vec::new();
        };
        let Ok(Chosen::Builtin(m)) = method(&stage.params) else {
            return Vec::new();
        };
        let Some(select) = stage
            .needs
            .iter()
            .filter_map(|n| need(n))
            .find(|n| n.kind == "select" && (n.name == from || n.base == from))
        else {
            return Vec::new();
        };
        let accepted = m.fields();
        let vars = super::select::vars(&select.params).unwrap_or_default();
        vars.iter()
            .filter(|v| !accepted.contains(v))
            .map(|v| {
                format!(
                    "`from: {from}` sets `{v}`, which method `{}` does not accept (it takes: {})",
                    m.name(),
                    accepted.join(", ")
                )
            })
            .collect()
    }
}
