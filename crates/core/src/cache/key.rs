//! The stage key: blake3 of a serialized struct of everything that determines a stage's outputs.

use crate::spec::CommandLine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What one upstream stage contributes to a key: its key and the hashes of its outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub key: String,
    pub outputs: BTreeMap<String, String>,
}

/// Everything that determines a stage's outputs. Thread counts, GPU ids and paths of the cache
/// are deliberately absent: they change where and how fast a stage runs, not what it computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub kind: String,
    /// Bumped when a kind's code changes its results.
    pub kind_version: u32,
    /// `with`, canonicalised (keys sorted at every level).
    pub params: Value,
    /// Upstream stages by name.
    pub upstream: BTreeMap<String, Upstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Input files as written in the pipeline, with their content hashes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
}

/// Rebuilds a JSON value with object keys in sorted order at every level.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

impl KeyMaterial {
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("key material serializes");
        super::hash_bytes(&bytes)
    }

    /// Human-readable reasons why `self` differs from an earlier `old`, most specific first.
    pub fn diff(&self, old: &KeyMaterial) -> Vec<String> {
        let mut why = Vec::new();
        if self.kind != old.kind {
            why.push(format!("kind changed: {} -> {}", old.kind, self.kind));
        } else if self.kind_version != old.kind_version {
            why.push(format!(
                "implementation of kind `{}` changed: version {} -> {}",
                self.kind, old.kind_version, self.kind_version
            ));
        }
        diff_values("with", &old.params, &self.params, &mut why);
        for (name, up) in &self.upstream {
            match old.upstream.get(name) {
                None => why.push(format!("new input from stage `{name}`")),
                Some(o) if o.outputs != up.outputs => {
                    let changed: Vec<&String> = up
                        .outputs
                        .iter()
                        .filter(|(f, h)| o.outputs.get(*f) != Some(*h))
                        .map(|(f, _)| f)
                        .chain(o.outputs.keys().filter(|f| !up.outputs.contains_key(*f)))
                        .collect();
                    let list: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
                    why.push(format!("output of `{name}` changed: {}", list.join(", ")));
                }
                Some(o) if o.key != up.key => why.push(format!(
                    "upstream stage `{name}` was recomputed with a new key"
                )),
                _ => {}
            }
        }
        for name in old
            .upstream
            .keys()
            .filter(|n| !self.upstream.contains_key(*n))
        {
            why.push(format!("no longer needs `{name}`"));
        }
        if self.command != old.command {
            why.push(format!(
                "command changed: {} -> {}",
                show_cmd(&old.command),
                show_cmd(&self.command)
            ));
        }
        if self.env != old.env {
            why.push("env changed".into());
        }
        for (f, h) in &self.files {
            match old.files.get(f) {
                None => why.push(format!("new input file {f}")),
                Some(o) if o != h => why.push(format!("input file {f} changed")),
                _ => {}
            }
        }
        for f in old.files.keys().filter(|f| !self.files.contains_key(*f)) {
            why.push(format!("input file {f} removed"));
        }
        if self.outputs != old.outputs {
            why.push("declared outputs changed".into());
        }
        why
    }
}

fn show_cmd(c: &Option<CommandLine>) -> String {
    match c {
        None => "(none)".into(),
        Some(CommandLine::Shell(s)) => format!("`{s}`"),
        Some(CommandLine::Argv(v)) => format!("`{}`", v.join(" ")),
    }
}

/// Lists parameter changes as `with.path: old -> new`.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, nv) in b {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(ov) => diff_values(&p, ov, nv, out),
                    None => out.push(format!("parameter {p} added: {nv}")),
                }
            }
            for (k, ov) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                out.push(format!("parameter {path}.{k} removed (was {ov})"));
            }
        }
        (a, b) if a != b => out.push(format!("parameter {path} changed: {a} -> {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn material(params: Value) -> KeyMaterial {
        KeyMaterial {
            kind: "command".into(),
            kind_version: 1,
            params: canonical(&params),
            upstream: BTreeMap::new(),
            command: Some(CommandLine::Shell("true".into())),
            env: BTreeMap::new(),
            files: BTreeMap::new(),
            outputs: vec![],
        }
    }

    #[test]
    fn key_ignores_key_order_and_tracks_values() {
        let a = material(json!({"a": 1, "b": {"x": 1, "y": 2}}));
        let b = material(json!({"b": {"y": 2, "x": 1}, "a": 1}));
        assert_eq!(a.key(), b.key());
        let c = material(json!({"a": 2, "b": {"x": 1, "y": 2}}));
        assert_ne!(a.key(), c.key());
        assert_eq!(c.diff(&a), vec!["parameter with.a changed: 1 -> 2"]);
    }
}
