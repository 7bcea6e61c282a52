//! The unlearning methods as the planner sees them: name, version, one parameter struct with the
//! defaults, and the source of every default. Each method's computation is in
//! `camu_torch::methods`, one file per method with the same name as here, and receives the same
//! struct: a default is written once, in the struct's `Default`.

use camu_core::params::{ParamError, parse};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Every method, once, as `module::Type`: this list declares the methods here ([`METHODS`]) and
/// their computations in `camu_torch::methods`. `$callback` is a macro taking the list.
#[macro_export]
macro_rules! for_each_method {
    ($callback:ident) => {
        $callback! {
            camu::Camu,
            finetune::Finetune,
            neggrad::NegGrad,
            neggrad_plus::NegGradPlus,
            random_label::RandomLabel,
            bad_teacher::BadTeacher,
            scrub::Scrub,
            unsir::Unsir,
            boundary_shrink::BoundaryShrink,
            boundary_expand::BoundaryExpand,
            unrolling_sgd::UnrollingSgd,
            amnesiac::Amnesiac,
            ssd::Ssd,
            salun::Salun,
            l1_sparse::L1Sparse,
        }
    };
}

macro_rules! declare {
    ($($module:ident::$ty:ident),* $(,)?) => {
        $(mod $module; pub use $module::*;)*
        /// Every declared method, in the order of [`for_each_method`].
        pub static METHODS: &[&dyn Method] = &[$(&$ty),*];
    };
}

for_each_method!(declare);

/// A method's parameters: one struct per method (serde defaults, `deny_unknown_fields`), read by
/// validation and by the computation alike; a run records it, with its context-dependent fields
/// resolved, as `hyperparameters`. Every number must be non-negative and every `*batch_size`
/// positive: [`read`] checks that for all methods.
pub trait MethodParams:
    Serialize + DeserializeOwned + Default + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Checks between fields, or on a value's meaning, beyond what the types say.
    fn check(&self) -> Result<(), ParamError> {
        Ok(())
    }
    /// The named configurations of the reference, default first, each a complete set of
    /// defaults; `with.preset` picks one and the other given fields override it. Empty for
    /// methods with one configuration.
    fn presets() -> Vec<(&'static str, Self)> {
        Vec::new()
    }
}

/// A method as declared: name, version, parameter struct and where its defaults come from.
pub trait Declared: Sync + 'static {
    const NAME: &'static str;
    /// Bump when the method's results change; part of the cache key.
    const VERSION: u32;
    type Params: MethodParams;
    /// The source of every default.
    fn reference() -> Reference;
}

/// Where a method's defaults come from, for `docs/methods.md` (`camu-pipe methods`). The values
/// themselves come from the parameter struct.
pub struct Reference {
    /// The repository and files the defaults were read in.
    pub source: &'static str,
    /// (field of the parameter struct, where in the source its default comes from): one entry
    /// per field, in the table's order.
    pub from: &'static [(&'static str, &'static str)],
    /// Defaults that depend on the data or the split (the struct leaves them unset), described.
    pub contextual: Vec<(&'static str, String)>,
    /// Where camu-pipe deliberately differs from the source, and why.
    pub deviations: &'static [&'static str],
}

/// A declared method behind its name.
pub trait Method: Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    fn reference(&self) -> Reference;
    /// Checks parameter types and ranges before anything runs.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError>;
    /// The parameters the method accepts: its struct's fields.
    fn fields(&self) -> Vec<String>;
    /// The defaults, serialised; under each preset when the method has several.
    fn defaults(&self) -> Vec<(&'static str, Value)>;
}

impl<T: Declared> Method for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn version(&self) -> u32 {
        T::VERSION
    }
    fn reference(&self) -> Reference {
        T::reference()
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        read::<T::Params>(params).map(|_| ())
    }
    fn fields(&self) -> Vec<String> {
        match serde_json::to_value(T::Params::default()) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
    fn defaults(&self) -> Vec<(&'static str, Value)> {
        let presets = T::Params::presets();
        let all = if presets.is_empty() {
            vec![("", T::Params::default())]
        } else {
            presets
        };
        all.into_iter()
            .map(|(n, p)| (n, serde_json::to_value(p).unwrap_or(Value::Null)))
            .collect()
    }
}

/// The parameter naming a preset, for the methods whose reference has several configurations.
pub const PRESET: &str = "preset";

/// Reads a method's `with` into its parameter struct: the preset's defaults (when `preset` names
/// one), overridden by the given fields; then the checks every method makes and its own.
pub fn read<P: MethodParams>(params: &Map<String, Value>) -> Result<P, ParamError> {
    let presets = P::presets();
    let p: P = match params.get(PRESET).and_then(Value::as_str) {
        Some(name) if !presets.is_empty() => {
            let known: Vec<&str> = presets.iter().map(|(n, _)| *n).collect();
            let (_, base) = presets
                .into_iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| ParamError::Schema {
                    key: PRESET.into(),
                    message: format!("unknown preset `{name}` (known: {})", known.join(", ")),
                })?;
            let mut merged = match serde_json::to_value(base) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            // A null stands for absent, as everywhere.
            merged.extend(
                params
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            parse(&merged)?
        }
        _ => parse(params)?,
    };
    if let Ok(Value::Object(m)) = serde_json::to_value(&p) {
        for (k, v) in &m {
            if v.as_f64().is_some_and(|x| x < 0.0) {
                return Err(ParamError::Range {
                    key: k.clone(),
                    rule: "not be negative",
                });
            }
            if k.ends_with("batch_size") && v.as_f64() == Some(0.0) {
                return Err(ParamError::Range {
                    key: k.clone(),
                    rule: "be positive",
                });
            }
        }
    }
    p.check()?;
    Ok(p)
}

/// The optimizer a training-based method steps with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Sgd,
    Adam,
}

/// The two data scales of a reference with one configuration per scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Full datasets: camu-pipe's protocol.
    Large,
    /// The reference's small-scale experiments.
    Small,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Large => "large",
            Scale::Small => "small",
        }
    }
}

/// The step settings of OPTML's `arg_parser.py` (Unlearn-Sparse and Unlearn-Saliency agree),
/// which every method derived from those repositories defaults to.
pub struct OptmlSteps {
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
}

pub const OPTML: OptmlSteps = OptmlSteps {
    momentum: 0.9,
    weight_decay: 5e-4,
    batch_size: 256,
};

/// The parameter of the OPTML-derived methods whose reference trains their batches with the
/// dataset's training transform (for CIFAR, RandomCrop(32, 4) and a horizontal flip): unset, on
/// for CIFAR and off for the MNIST family (which the references never augment).
pub const AUGMENT: &str = "augment";

/// The source line of `augment` for the OPTML-derived methods.
pub const OPTML_AUGMENT: (&str, &str) = (
    AUGMENT,
    "OPTML's CIFAR loaders (`dataset.py`): the forget and retained sets keep the training set's RandomCrop(32, 4) and RandomHorizontalFlip",
);

/// The description of `augment`'s contextual default.
pub fn augment_default() -> (&'static str, String) {
    (AUGMENT, "CIFAR: true; MNIST family: false".into())
}

/// Whether batches are augmented: `augment` when given, else on for CIFAR only.
pub fn augment(given: Option<bool>, family: crate::protocol::Family) -> bool {
    given.unwrap_or(family == crate::protocol::Family::Cifar)
}

/// Whether method `m` augments its training batches when asked (it has the `augment` field).
pub fn augments(m: &dyn Method) -> bool {
    m.fields().iter().any(|f| f == AUGMENT)
}

pub fn lookup(name: &str) -> Option<&'static dyn Method> {
    METHODS.iter().copied().find(|m| m.name() == name)
}

pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name()).collect()
}

/// A default as the documentation shows it: integral floats without a fraction.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.fract() == 0.0 && x.abs() < 1e15 {
                format!("{}", x as i64)
            } else {
                format!("{x}")
            }
        }
        other => other.to_string(),
    }
}

/// The default column of one field: the value (under the default preset, with the others'
/// where they differ), or the description of a contextual default.
fn default_text(m: &dyn Method, field: &str) -> String {
    let r = m.reference();
    if let Some((_, text)) = r.contextual.iter().find(|(k, _)| *k == field) {
        return text.clone();
    }
    let defaults = m.defaults();
    let first = defaults
        .first()
        .map(|(_, d)| d.get(field).cloned().unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut text = show(&first);
    for (name, d) in defaults.iter().skip(1).filter(|_| field != PRESET) {
        let v = d.get(field).cloned().unwrap_or(Value::Null);
        if v != first {
            text.push_str(&format!(" ({name}: {})", show(&v)));
        }
    }
    text
}

/// The provenance of every method's defaults as Markdown: the text of `docs/methods.md`.
pub fn provenance_markdown() -> String {
    let mut out = String::from(
        "# Method defaults and their sources\n\n\
         Generated by `camu-pipe methods` from each method's parameter struct (its `Default`, and \
         its presets) and `reference()` (crates/lab/src/methods/); a test keeps this file and the \
         code in step, and another runs every method and checks that the hyperparameters it \
         records are these defaults. Every default can be overridden in a stage's `with`. Each \
         source names the commit of the repository its defaults were read at; where a repository \
         has one configuration per data scale, `preset` chooses it and the default is the one for \
         full datasets, camu-pipe's protocol (the other preset's value in parentheses where it \
         differs).\n",
    );
    for m in METHODS {
        let r = m.reference();
        out.push_str(&format!(
            "\n## {} (version {})\n\nSource: {}.\n\n| parameter | default | from |\n|---|---|---|\n",
            m.name(),
            m.version(),
            r.source
        ));
        for (k, src) in r.from {
            out.push_str(&format!("| `{k}` | {} | {src} |\n", default_text(*m, k)));
        }
        if !r.deviations.is_empty() {
            out.push_str("\nDeliberate differences:\n\n");
            for d in r.deviations {
                out.push_str(&format!("- {d}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_methods_md_is_what_the_code_says() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/methods.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            doc.trim_end(),
            provenance_markdown().trim_end(),
            "docs/methods.md is stale: regenerate it with `camu-pipe methods > docs/methods.md`"
        );
    }

    #[test]
    fn every_field_has_a_source_and_every_source_a_field() {
        for m in METHODS {
            let mut fields = m.fields();
            let mut from: Vec<String> = m
                .reference()
                .from
                .iter()
                .map(|(k, _)| k.to_string())
                .collect();
            fields.sort();
            from.sort();
            assert_eq!(fields, from, "{}", m.name());
            for (k, _) in m.reference().contextual {
                assert!(
                    fields.iter().any(|f| f == k),
                    "{}: contextual `{k}` is no field",
                    m.name()
                );
            }
        }
    }

    #[test]
    fn every_unset_default_is_described() {
        for m in METHODS {
            let r = m.reference();
            for (name, d) in m.defaults() {
                for (k, v) in d.as_object().into_iter().flatten() {
                    if v.is_null() {
                        assert!(
                            r.contextual.iter().any(|(c, _)| c == k),
                            "{} {name}: `{k}` has no default and no description",
                            m.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_defaults_pass_validation_and_unknown_or_negative_values_do_not() {
        for m in METHODS {
            assert!(m.validate(&Map::new()).is_ok(), "{}", m.name());
            let bad: Map<String, Value> = [("no_such".to_string(), Value::from(1))]
                .into_iter()
                .collect();
            assert!(
                matches!(m.validate(&bad), Err(ParamError::Unknown { .. })),
                "{}",
                m.name()
            );
        }
        let neg: Map<String, Value> = [("lr".to_string(), Value::from(-1.0))]
            .into_iter()
            .collect();
        assert!(matches!(
            lookup("finetune").unwrap().validate(&neg),
            Err(ParamError::Range { .. })
        ));
        let zero: Map<String, Value> = [("batch_size".to_string(), Value::from(0))]
            .into_iter()
            .collect();
        assert!(lookup("finetune").unwrap().validate(&zero).is_err());
    }

    #[test]
    fn a_preset_supplies_defaults_that_given_fields_override() {
        let small: Map<String, Value> =
            serde_json::from_str(r#"{"preset": "small", "alpha": 0.5}"#).unwrap();
        let p: NegGradPlusParams = read(&small).unwrap();
        assert_eq!(p.alpha, 0.5);
        assert_eq!(p.anchor, 0.1, "from the small preset");
        assert_eq!(p.forget_batch_size, 64);
        let unknown: Map<String, Value> = serde_json::from_str(r#"{"preset": "huge"}"#).unwrap();
        let e = read::<NegGradPlusParams>(&unknown).unwrap_err().to_string();
        assert!(
            e.contains("unknown preset `huge`") && e.contains("large, small"),
            "{e}"
        );
    }
}
