//! Typed access to a stage's `with` parameters, with errors that name the parameter.

use serde_json::{Map, Value};

pub struct Params<'a>(pub &'a Map<String, Value>);

/// Rejects parameters a kind does not know, listing the ones it does.
pub fn check_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            let mut known = allowed.to_vec();
            known.sort();
            return Err(format!(
                "unknown parameter `{k}` (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

impl<'a> Params<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    fn wrong(key: &str, want: &str, v: &Value) -> String {
        format!("parameter `{key}` must be {want}, got {v}")
    }
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, String> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| Self::wrong(key, "a number", v)))
            .transpose()
    }
    pub fn f64(&self, key: &str, default: f64) -> Result<f64, String> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| v.as_i64().ok_or_else(|| Self::wrong(key, "an integer", v)))
            .transpose()
    }
    pub fn i64(&self, key: &str, default: i64) -> Result<i64, String> {
        Ok(self.opt_i64(key)?.unwrap_or(default))
    }
    pub fn usize(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| Self::wrong(key, "a non-negative integer", v)),
        }
    }
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| Self::wrong(key, "a string", v)))
            .transpose()
    }
    pub fn str(&self, key: &str, default: &'a str) -> Result<&'a str, String> {
        Ok(self.opt_str(key)?.unwrap_or(default))
    }
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Self::wrong(key, "true or false", v)),
        }
    }
    /// Checks that every given float parameter, if set, is not negative.
    pub fn non_negative(&self, keys: &[&str]) -> Result<(), String> {
        for k in keys {
            if self.opt_f64(k)?.is_some_and(|v| v < 0.0) {
                return Err(format!("parameter `{k}` must not be negative"));
            }
        }
        Ok(())
    }
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
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
    pub fn i64s(&self, key: &str) -> Result<Option<Vec<i64>>, String> {
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
