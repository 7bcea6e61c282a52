//! Typed access to a stage's `with` parameters, with errors that name the parameter.

use serde_json::{Map, Value};

/// A parameter the stage cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter `{key}` (known: {known})")]
    Unknown { key: String, known: String },
    #[error("parameter `{key}` must be {want}, got {got}")]
    Type {
        key: String,
        want: &'static str,
        got: String,
    },
    #[error("parameter `{key}` is required")]
    Required { key: String },
    #[error("parameter `{key}` must {rule}")]
    Range { key: String, rule: &'static str },
    /// A value that does not fit the kind's parameter struct.
    #[error("parameter `{key}`: {message}")]
    Schema { key: String, message: String },
    /// A value outside the set a parameter takes.
    #[error("unknown {what} `{value}` (known: {known})")]
    UnknownValue {
        what: &'static str,
        value: String,
        known: String,
    },
    /// A constraint between parameters, or on a value's meaning, in the kind's own words.
    #[error("{0}")]
    Invalid(String),
    /// A method's parameters, named by the method.
    #[error("method `{method}`: {source}")]
    Method {
        method: String,
        #[source]
        source: Box<ParamError>,
    },
}

/// Reads `with` into a kind's parameter struct (serde defaults, `deny_unknown_fields`): the one
/// reading that validation and the run share. A null value counts as absent, as everywhere.
pub fn parse<T: serde::de::DeserializeOwned>(map: &Map<String, Value>) -> Result<T, ParamError> {
    let present: Map<String, Value> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(present)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        match message.strip_prefix("unknown field `") {
            Some(rest) => {
                let (field, known) = rest.split_once("`, expected ").unwrap_or((rest, ""));
                ParamError::Unknown {
                    key: field.to_string(),
                    known: known
                        .replace("one of ", "")
                        .replace("` or `", ", ")
                        .replace('`', ""),
                }
            }
            None if key == "." => ParamError::Invalid(message),
            None => match type_error(&message) {
                Some((want, got)) => ParamError::Type { key, want, got },
                None => ParamError::Schema { key, message },
            },
        }
    })
}

/// serde's "invalid type: string \"x\", expected f64" in the words the rest of the parameter
/// errors use: (what was wanted, what was given).
fn type_error(message: &str) -> Option<(&'static str, String)> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.rsplit_once(", expected ")?;
    let want = match expected {
        "f64" | "f32" => "a number",
        "usize" | "u64" | "u32" => "a non-negative integer",
        "i64" | "i32" => "an integer",
        "a boolean" => "true or false",
        "a string" => "a string",
        _ => return None,
    };
    Some((want, got.to_string()))
}

pub struct Params<'a>(pub &'a Map<String, Value>);

/// Rejects parameters a kind does not know, listing the ones it does.
pub fn check_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ParamError> {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            let mut known = allowed.to_vec();
            known.sort();
            return Err(ParamError::Unknown {
                key: k.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

impl<'a> Params<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    fn wrong(key: &str, want: &'static str, v: &Value) -> ParamError {
        ParamError::Type {
            key: key.to_string(),
            want,
            got: v.to_string(),
        }
    }
    /// A value of `key` that is required.
    pub fn required<T>(key: &str, v: Option<T>) -> Result<T, ParamError> {
        v.ok_or_else(|| ParamError::Required {
            key: key.to_string(),
        })
    }
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, ParamError> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| Self::wrong(key, "a number", v)))
            .transpose()
    }
    pub fn f64(&self, key: &str, default: f64) -> Result<f64, ParamError> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ParamError> {
        self.get(key)
            .map(|v| v.as_i64().ok_or_else(|| Self::wrong(key, "an integer", v)))
            .transpose()
    }
    pub fn i64(&self, key: &str, default: i64) -> Result<i64, ParamError> {
        Ok(self.opt_i64(key)?.unwrap_or(default))
    }
    pub fn usize(&self, key: &str, default: usize) -> Result<usize, ParamError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| Self::wrong(key, "a non-negative integer", v)),
        }
    }
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ParamError> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| Self::wrong(key, "a string", v)))
            .transpose()
    }
    pub fn str(&self, key: &str, default: &'a str) -> Result<&'a str, ParamError> {
        Ok(self.opt_str(key)?.unwrap_or(default))
    }
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ParamError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Self::wrong(key, "true or false", v)),
        }
    }
    /// Checks that every given float parameter, if set, is not negative.
    pub fn non_negative(&self, keys: &[&str]) -> Result<(), ParamError> {
        for k in keys {
            if self.opt_f64(k)?.is_some_and(|v| v < 0.0) {
                return Err(ParamError::Range {
                    key: k.to_string(),
                    rule: "not be negative",
                });
            }
        }
        Ok(())
    }
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ParamError> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or_else(|| Self::wrong(key, "a list of strings", v))
                })
                .collect(),
            Some(v) => Err(Self::wrong(key, "a list of strings", v)),
        }
    }
    pub fn i64s(&self, key: &str) -> Result<Option<Vec<i64>>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| Self::wrong(key, "a list of integers", v))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(v) if v.is_i64() => Ok(Some(vec![v.as_i64().unwrap_or_default()])),
            Some(v) => Err(Self::wrong(key, "a list of integers", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        #[serde(default)]
        epochs: usize,
        lr: Option<f64>,
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parse_names_the_parameter_and_treats_null_as_absent() {
        let p: P = parse(&map(json!({"epochs": 3, "lr": null}))).unwrap();
        assert_eq!((p.epochs, p.lr), (3, None));
        let e = parse::<P>(&map(json!({"epochs": -1}))).unwrap_err();
        assert!(
            matches!(&e, ParamError::Schema { key, .. } if key == "epochs"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("parameter `epochs`: invalid value"),
            "{e}"
        );
        let e = parse::<P>(&map(json!({"lr": "fast"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter `lr` must be a number, got string \"fast\""
        );
        let e = parse::<P>(&map(json!({"epoch": 3}))).unwrap_err();
        assert_eq!(
            e,
            ParamError::Unknown {
                key: "epoch".into(),
                known: "epochs, lr".into()
            }
        );
    }
}
