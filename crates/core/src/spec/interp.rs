//! `${var}` interpolation. Matrix variables are substituted when the pipeline is expanded; the
//! run-time placeholders (`${out}`, `${in.STAGE}`, `${threads}`, `${gpus}`, `${workdir}`) are kept
//! verbatim and filled in by the stage process, since they name directories that depend on keys.

use indexmap::IndexMap;
use serde_json::Value;

/// Placeholders only the stage process can resolve.
pub fn is_runtime(name: &str) -> bool {
    matches!(name, "out" | "threads" | "gpus" | "workdir" | "data")
        || name.strip_prefix("in.").is_some_and(|s| !s.is_empty())
}

/// One `${...}` reference found in a string.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
    /// `$${`: a literal `${`.
    Escape,
}

/// A `${...}` reference that cannot be substituted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpError {
    #[error("unclosed `${{` in {text:?}")]
    Unclosed { text: String },
    #[error("bad variable name `${{{name}}}` in {text:?}")]
    BadName { name: String, text: String },
    /// `known` lists what the stage could have used (empty: it has no matrix variables).
    #[error("unknown variable `${{{name}}}`{}", known_text(.known))]
    Unknown { name: String, known: Vec<String> },
    #[error("cannot resolve `${{{0}}}`")]
    Unresolved(String),
}

fn known_text(known: &[String]) -> String {
    if known.is_empty() {
        " (this stage has no matrix variables)".into()
    } else {
        format!("; known here: {}", known.join(", "))
    }
}

/// Splits a string into text and `${name}` references; `$${` is a literal `${`.
pub fn parse(s: &str) -> Result<Vec<Piece<'_>>, InterpError> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            pieces.push(Piece::Text(&rest[..i]));
            pieces.push(Piece::Escape);
            rest = tail;
            continue;
        }
        if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| InterpError::Unclosed { text: s.into() })?;
            let name = body[..end].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.-@=,".contains(c))
            {
                return Err(InterpError::BadName {
                    name: body[..end].into(),
                    text: s.into(),
                });
            }
            pieces.push(Piece::Text(&rest[..i]));
            pieces.push(Piece::Var(name));
            rest = &body[end + 1..];
        } else {
            pieces.push(Piece::Text(&rest[..i + 1]));
            rest = after;
        }
    }
    pieces.push(Piece::Text(rest));
    pieces.retain(|p| *p != Piece::Text(""));
    Ok(pieces)
}

/// A matrix value as it appears in names and strings.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Substitutes matrix variables in a string. Run-time placeholders survive unless
/// `allow_runtime` is false, in which case they are errors.
pub fn substitute(
    s: &str,
    vars: &IndexMap<String, Value>,
    allow_runtime: bool,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(s.len());
    for piece in parse(s)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            // Strings parsed again at run time keep the escape.
            Piece::Escape => out.push_str(if allow_runtime { "$${" } else { "${" }),
            Piece::Var(name) => {
                if let Some(v) = vars.get(name) {
                    // A value is data: in a string filled again at run time, a `${` inside it
                    // is escaped, so `${out}/..` in a matrix value stays those characters.
                    let text = value_text(v);
                    if allow_runtime {
                        out.push_str(&text.replace("${", "$${"));
                    } else {
                        out.push_str(&text);
                    }
                } else if allow_runtime && is_runtime(name) {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                } else {
                    return Err(unknown(name, vars, allow_runtime));
                }
            }
        }
    }
    Ok(out)
}

fn unknown(name: &str, vars: &IndexMap<String, Value>, allow_runtime: bool) -> InterpError {
    let mut known: Vec<String> = vars.keys().map(|k| format!("${{{k}}}")).collect();
    if allow_runtime {
        known.extend(
            [
                "${out}",
                "${in.STAGE}",
                "${threads}",
                "${gpus}",
                "${workdir}",
                "${data}",
            ]
            .map(String::from),
        );
    }
    InterpError::Unknown {
        name: name.into(),
        known,
    }
}

/// Substitutes inside a parameter tree. A string that is exactly `${var}` takes the variable's
/// value with its type, so `seed: ${seed}` stays a number.
pub fn substitute_value(v: &Value, vars: &IndexMap<String, Value>) -> Result<Value, InterpError> {
    Ok(match v {
        Value::String(s) => {
            if let Ok(pieces) = parse(s)
                && let [Piece::Var(name)] = pieces.as_slice()
                && let Some(val) = vars.get(*name)
            {
                return Ok(val.clone());
            }
            Value::String(substitute(s, vars, false)?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| substitute_value(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, val) in map {
                out.insert(k.clone(), substitute_value(val, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Fills run-time placeholders in a string with the given lookup.
pub fn fill_runtime(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(s.len());
    for piece in parse(s)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Escape => out.push_str("${"),
            Piece::Var(name) => {
                out.push_str(&lookup(name).ok_or_else(|| InterpError::Unresolved(name.into()))?)
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> IndexMap<String, Value> {
        let mut m = IndexMap::new();
        m.insert("dataset".into(), json!("mnist"));
        m.insert("seed".into(), json!(3));
        m
    }

    #[test]
    fn substitutes_and_keeps_runtime() {
        let s = substitute(
            "d=${dataset} s=${seed} o=${out}/x ${in.train}",
            &vars(),
            true,
        )
        .unwrap();
        assert_eq!(s, "d=mnist s=3 o=${out}/x ${in.train}");
    }

    #[test]
    fn rejects_unknown_and_malformed() {
        let e = substitute("${nope}", &vars(), true).unwrap_err();
        assert!(
            matches!(&e, InterpError::Unknown { name, known } if name == "nope" && known.contains(&"${out}".to_string())),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("unknown variable `${nope}`; known here: "),
            "{e}"
        );
        assert!(matches!(
            substitute("${out}", &vars(), false),
            Err(InterpError::Unknown { .. })
        ));
        let e = substitute("${dataset", &vars(), true).unwrap_err();
        assert!(matches!(e, InterpError::Unclosed { .. }));
        assert!(e.to_string().contains("unclosed"));
        assert!(matches!(
            substitute("${}", &vars(), true),
            Err(InterpError::BadName { .. })
        ));
    }

    #[test]
    fn matrix_values_are_substituted_once() {
        let mut v = vars();
        v.insert(
            "p".into(),
            Value::String("${out}/../../../ESCAPE ${nope} $${x}".into()),
        );
        let planned = substitute("echo '${p}' > ${out}/o", &v, true).unwrap();
        let filled =
            fill_runtime(&planned, &|n: &str| (n == "out").then(|| "/o".to_string())).unwrap();
        assert_eq!(filled, "echo '${out}/../../../ESCAPE ${nope} $${x}' > /o/o");
    }

    #[test]
    fn escape_and_typed_values() {
        assert_eq!(
            substitute("$${dataset} $5", &vars(), false).unwrap(),
            "${dataset} $5"
        );
        let v =
            substitute_value(&json!({"seed": "${seed}", "n": ["${dataset}-x"]}), &vars()).unwrap();
        assert_eq!(v, json!({"seed": 3, "n": ["mnist-x"]}));
    }

    #[test]
    fn fills_runtime() {
        let kept = substitute("${out}/a ${in.x} $${HOME}", &vars(), true).unwrap();
        let s = fill_runtime(&kept, &|n| Some(format!("<{n}>"))).unwrap();
        assert_eq!(s, "<out>/a <in.x> ${HOME}");
    }
}
