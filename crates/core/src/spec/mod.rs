//! Pipeline specification: YAML schema, matrix expansion, interpolation and validation.
//!
//! Everything here happens before any stage runs: a pipeline either loads completely valid, or
//! loading returns a [`SpecError`] listing every problem with its file:line:column.

mod error;
pub mod interp;
mod kind;
mod raw;

pub use error::{Pos, SpecError, SpecIssue};
pub use kind::{Kind, Registry, Requirement};
pub use raw::{Gpus, Memory, RawCommand, ResourceError, Resources, TimeLimit};

use indexmap::IndexMap;
use raw::{RawPipeline, RawStage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a `command` stage's program is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}

/// One stage after matrix expansion: a node of the DAG.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Expanded name, e.g. `train@dataset=mnist,seed=0`.
    pub name: String,
    /// The name as declared in the file, e.g. `train`.
    pub base: String,
    /// Matrix variables of this instance, in declaration order.
    pub bindings: IndexMap<String, Value>,
    pub kind: String,
    /// The kind's version for these parameters: part of the key.
    pub kind_version: u32,
    /// The binary that runs the stage process (`None`: the running one).
    pub worker: Option<&'static str>,
    /// Downstream keys take this stage's outputs, not its key (`Kind::cutoff`).
    pub cutoff: bool,
    /// Resolved upstream stage names (expanded).
    pub needs: Vec<String>,
    /// Parameters (`with`), defaults merged in, variables substituted.
    pub params: serde_json::Map<String, Value>,
    pub resources: Resources,
    pub command: Option<CommandLine>,
    /// Files whose content is part of the key: the declared `inputs` of a command, and the files
    /// the kind names (`Kind::key_files`).
    pub inputs: Vec<String>,
    /// Code built into the program that determines the results (`Kind::key_content`).
    pub content: BTreeMap<String, String>,
    pub outputs: Vec<String>,
    pub env: IndexMap<String, String>,
    /// The Python interpreter, for a stage that runs Python (`python:`).
    pub python: Option<String>,
    pub description: Option<String>,
    pub pos: Option<Pos>,
}

/// A loaded, expanded and validated pipeline.
#[derive(Debug)]
pub struct Pipeline {
    /// Absolute path of the pipeline file.
    pub path: PathBuf,
    /// Directory relative paths in the file are resolved against.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub stages: Vec<Stage>,
    index: HashMap<String, usize>,
    source: Arc<String>,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.index.get(name).map(|&i| &self.stages[i])
    }
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    /// An error about this file, for problems found after loading (e.g. cycles).
    pub fn error(&self, issues: Vec<SpecIssue>) -> SpecError {
        SpecError::new(&self.path, self.source.clone(), issues)
    }
}

/// The largest pipeline file read: the largest real pipeline is a few KB, and a matrix expands
/// to many stages from a few lines.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The deepest nesting of mappings and lists in a pipeline file.
pub const MAX_DEPTH: usize = 32;
/// The longest plain (unquoted) key YAML allows.
const MAX_PLAIN_KEY: usize = 1024;
/// The longest stage or matrix variable name.
pub const MAX_NAME: usize = 128;
/// Linux's MAX_ARG_STRLEN: the longest single argument exec accepts.
const MAX_ARG: usize = 128 * 1024;

/// Reads, expands and validates a pipeline file.
pub fn load(path: &Path, kinds: &Registry) -> Result<Pipeline, SpecError> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let fail = |message: String| {
        SpecError::new(
            &abs,
            Arc::new(String::new()),
            vec![SpecIssue::new(message, None)],
        )
    };
    let file =
        std::fs::File::open(&abs).map_err(|e| fail(format!("cannot read pipeline file: {e}")))?;
    // Read one byte past the limit, so a larger file is refused without reading all of it.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| fail(format!("cannot read pipeline file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!(
            "the file is larger than {} MiB; a pipeline file is at most that (use a matrix for many similar stages)",
            MAX_FILE_BYTES >> 20
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&abs, text, kinds)
}

/// How pipeline YAML is read: strict booleans (only true/false, so a matrix value like `y` or
/// `no` stays a string), no application tags (`!!python/...` would otherwise be dropped
/// silently), duplicate keys refused, and nesting bounded.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.reject_unsupported_tags = true;
    options.reject_tagged_field_names = true;
    // `<<: *anchor` would silently bring keys the reader does not see where they act.
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    options.with_snippet = false;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options
}

/// Parses pipeline text as if read from `path`.
pub fn parse(path: &Path, text: String, kinds: &Registry) -> Result<Pipeline, SpecError> {
    let source = Arc::new(text);
    let fail = |issues| SpecError::new(path, source.clone(), issues);
    if let Some(issue) = explicit_tag(&source) {
        return Err(fail(vec![issue]));
    }
    let raw: RawPipeline =
        serde_saphyr::from_str_with_options(&source, yaml_options()).map_err(|e| {
            let pos = e.location().and_then(Pos::from_saphyr);
            fail(vec![yaml_issue(&e, pos, &source)])
        })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut issues = Vec::new();
    if raw.stages.is_empty() {
        issues.push(SpecIssue::new("the pipeline declares no stages", None));
    }
    let stages = expand(&raw, kinds, &mut issues);
    check_key_files(&stages, kinds, &dir, &mut issues);
    if stages.len() > MAX_STAGES {
        issues.push(SpecIssue::new(
            format!(
                "the pipeline expands to {} stages; at most {MAX_STAGES} are allowed",
                stages.len()
            ),
            None,
        ));
    }
    if !issues.is_empty() {
        return Err(fail(issues));
    }
    let index = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    Ok(Pipeline {
        path: path.to_path_buf(),
        dir,
        description: raw.description,
        stages,
        index,
        source,
    })
}

/// The first explicit tag in the file, core-schema tags included: the reader's options refuse
/// application tags only, and `!!binary` would turn base64 into a value nobody reading the file
/// sees, `!!str`/`!!map` change how a node reads. Syntax errors are left to the main parse,
/// which words them; aliases are not expanded here, so the scan is linear in the file's size.
fn explicit_tag(text: &str) -> Option<SpecIssue> {
    use serde_saphyr::granit_parser::{Event, Parser};
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let (Event::Scalar(.., Some(tag))
        | Event::SequenceStart(.., Some(tag))
        | Event::MappingStart(.., Some(tag))) = event
        else {
            continue;
        };
        let at = span.tag_start.unwrap_or(span.start);
        // The tag as written (`!!binary`, not its resolved `tag:yaml.org,2002:binary`).
        let written = at
            .byte_offset()
            .and_then(|b| text.get(b..))
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|t| t.starts_with('!'))
            .map_or_else(|| tag.to_string(), str::to_string);
        let pos = Pos {
            line: at.line(),
            column: at.col() + 1,
        };
        return Some(
            SpecIssue::new(format!("YAML tag `{written}` is not allowed in a pipeline"), (at.line() > 0).then_some(pos))
                .help("values are plain strings, numbers, booleans, lists and mappings; quote a string that starts with `!`"),
        );
    }
    None
}

/// The files a kind keys a stage by (e.g. a method's script) exist before anything runs, so a
/// wrong path is refused at once instead of after the stage's upstream has run.
fn check_key_files(stages: &[Stage], kinds: &Registry, dir: &Path, issues: &mut Vec<SpecIssue>) {
    let mut seen = std::collections::HashSet::new();
    for s in stages {
        let Some(kind) = kinds.lookup(&s.kind) else {
            continue;
        };
        for f in kind.key_files(&s.params) {
            if !dir.join(&f).is_file() && seen.insert((s.base.clone(), f.clone())) {
                issues.push(SpecIssue::new(
                    format!(
                        "stage `{}`: {} does not exist (paths are relative to the pipeline's directory, {})",
                        s.base,
                        f,
                        dir.display()
                    ),
                    s.pos,
                ));
            }
        }
    }
}

/// A YAML error in our words: the library's messages that address its caller (budgets,
/// options) are rewritten for the pipeline's author.
fn yaml_issue(e: &serde_saphyr::Error, pos: Option<Pos>, text: &str) -> SpecIssue {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    match e.without_snippet() {
        E::Budget { breach, .. } => {
            let (what, help) = match breach {
                B::Depth { .. } => (
                    format!("mappings and lists are nested more than {MAX_DEPTH} deep"),
                    "a pipeline needs only a few levels: stages, a stage, `with`, a value",
                ),
                B::Documents { .. } => (
                    "the file holds more than one YAML document (`---`)".to_string(),
                    "a pipeline file is one document",
                ),
                other => (
                    format!("the file is too large to read as a pipeline ({})", budget_name(other)),
                    "use a matrix for many similar stages",
                ),
            };
            SpecIssue::new(what, pos).help(help)
        }
        E::DuplicateMappingKey { key, .. } => SpecIssue::new(
            match key {
                Some(k) => format!("duplicate key `{}`", k),
                None => "duplicate key".to_string(),
            },
            pos,
        )
        .help("each key may appear once in a mapping"),
        E::UnsupportedTag { tag, .. } | E::TaggedStructFieldName { tag, .. } => SpecIssue::new(
            format!("YAML tag `{}` is not allowed in a pipeline", tag),
            pos,
        )
        .help("values are plain strings, numbers, booleans, lists and mappings; quote a string that starts with `!`"),
        _ => match pos.and_then(|p| long_key(text, p)) {
            Some(n) => SpecIssue::new(
                format!("a key of {n} characters; YAML allows plain keys of at most {MAX_PLAIN_KEY}"),
                pos,
            )
            .help(format!("stage and variable names are at most {MAX_NAME} characters")),
            None => SpecIssue::new(message_of(e), pos),
        },
    }
}

fn budget_name(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    // The variant's name and count, e.g. `Nodes { nodes: 250001 }` -> "more than 250,000 nodes".
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Nodes { nodes } => format!("{} YAML nodes", nodes.saturating_sub(1)),
        B::Events { events } => format!("{} YAML events", events.saturating_sub(1)),
        B::Aliases { aliases } => format!("{} aliases", aliases.saturating_sub(1)),
        B::Anchors { anchors } => format!("{} anchors", anchors.saturating_sub(1)),
        _ => "a YAML size limit".to_string(),
    }
    .replacen("", "more than ", 1)
}

/// The length of the plain key that starts at `pos` when it is too long for YAML to read as
/// one (the parser then reports something unrelated, like "expected mapping start").
fn long_key(text: &str, pos: Pos) -> Option<usize> {
    let line = text.lines().nth(pos.line.checked_sub(1)?)?;
    let rest: String = line.chars().skip(pos.column.saturating_sub(1)).collect();
    let key = rest.find(':').map(|i| rest[..i].chars().count())?;
    (key > MAX_PLAIN_KEY).then_some(key)
}

/// The library's one-line message without its own "line L column C:" prefix, which ours says.
fn message_of(e: &serde_saphyr::Error) -> String {
    let msg = e.to_string();
    let line = msg.lines().next().unwrap_or(&msg).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let line = match line.find(": ") {
        Some(i) if line[..i].starts_with("line ") && line[..i].contains("column") => &line[i + 2..],
        _ => line,
    };
    // ... or its " at line L, column C" suffix.
    let line = match line.rfind(" at line ") {
        Some(i) if line[i..].contains(", column ") => &line[..i],
        _ => line,
    };
    // The parser's names for what it expected, in the words of the pipeline's author.
    const PLAIN: [(&str, &str); 5] = [
        (
            "expected mapping start",
            "expected a mapping (`key: value` lines or `{...}`)",
        ),
        (
            "expected sequence start",
            "expected a list (`- item` lines or `[...]`)",
        ),
        ("expected string scalar", "expected a string"),
        ("invalid u64", "expected a whole number, not negative"),
        ("invalid usize", "expected a whole number, not negative"),
    ];
    PLAIN
        .iter()
        .find(|(lib, _)| line == *lib)
        .map_or_else(|| line.to_string(), |(_, ours)| ours.to_string())
}

fn pos_of(loc: serde_saphyr::Location) -> Option<Pos> {
    Pos::from_saphyr(loc)
}

fn valid_base_name(name: &str) -> bool {
    // `.` and `..` would read as paths wherever a name becomes one (reports, `${in.NAME}`).
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The name of one matrix instance.
pub fn instance_name(base: &str, bindings: &IndexMap<String, Value>) -> String {
    if bindings.is_empty() {
        return base.to_string();
    }
    let parts: Vec<String> = bindings
        .iter()
        .map(|(k, v)| format!("{k}={}", interp::value_text(v)))
        .collect();
    format!("{base}@{}", parts.join(","))
}

/// The most instances one stage's matrix may expand to: a bigger grid is almost always a typo,
/// and would take gigabytes to plan.
pub const MAX_INSTANCES: usize = 10_000;

/// The most stages a pipeline may have after expansion.
pub const MAX_STAGES: usize = 100_000;

/// A stage's matrix as written, with its position.
type Matrix = serde_saphyr::Spanned<IndexMap<String, Vec<Value>>>;

/// The stage's matrix with `search.space` added (None on a clash, reported).
fn merge_search(base: &str, rs: &RawStage, issues: &mut Vec<SpecIssue>) -> Option<Option<Matrix>> {
    let Some(search) = &rs.search else {
        return Some(rs.matrix.clone());
    };
    let pos = pos_of(search.referenced);
    let mut ok = true;
    if search.value.space.is_empty() {
        issues.push(SpecIssue::new(
            format!("stage `{base}`: `search.space` is empty"),
            pos,
        ));
        ok = false;
    }
    if search.value.sample == Some(0) {
        issues.push(SpecIssue::new(
            format!("stage `{base}`: `search.sample` must be at least 1"),
            pos,
        ));
        ok = false;
    }
    let mut matrix = rs
        .matrix
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_default();
    for (var, values) in &search.value.space {
        if matrix.insert(var.clone(), values.clone()).is_some() {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: `{var}` is both a matrix and a search variable"),
                pos,
            ));
            ok = false;
        }
    }
    ok.then(|| {
        let (referenced, defined) = match &rs.matrix {
            Some(m) => (m.referenced, m.defined),
            None => (search.referenced, search.defined),
        };
        Some(serde_saphyr::Spanned::new(matrix, referenced, defined))
    })
}

/// The instances whose search variables are among the `sample` combinations of the space that
/// rank first by blake3(seed, combination): a seeded choice that is the same on every machine.
/// Each combination's rank depends on it alone, so growing the space changes the sample only
/// where a new combination ranks among the first `sample`.
fn sample_search(
    search: &raw::RawSearch,
    instances: Vec<IndexMap<String, Value>>,
) -> Vec<IndexMap<String, Value>> {
    let Some(n) = search.sample else {
        return instances;
    };
    let rank = |combo: &IndexMap<String, Value>| {
        // Keys sorted: the order the space is written in does not change the sample.
        let sorted: BTreeMap<&String, &Value> = combo.iter().collect();
        let text = serde_json::to_string(&sorted).unwrap_or_default();
        let mut h = blake3::Hasher::new();
        h.update(&search.seed.to_le_bytes());
        h.update(text.as_bytes());
        *h.finalize().as_bytes()
    };
    let mut combos: Vec<([u8; 32], IndexMap<String, Value>)> = combinations(&search.space)
        .into_iter()
        .map(|c| (rank(&c), c))
        .collect();
    combos.sort_by_key(|a| a.0);
    let chosen: Vec<IndexMap<String, Value>> = combos.into_iter().take(n).map(|(_, c)| c).collect();
    instances
        .into_iter()
        .filter(|b| {
            chosen
                .iter()
                .any(|c| c.iter().all(|(k, v)| b.get(k) == Some(v)))
        })
        .collect()
}

/// All combinations of the matrix, first variable varying slowest.
fn combinations(matrix: &IndexMap<String, Vec<Value>>) -> Vec<IndexMap<String, Value>> {
    let mut out = vec![IndexMap::new()];
    for (var, values) in matrix {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for partial in &out {
            for v in values {
                let mut b = partial.clone();
                b.insert(var.clone(), v.clone());
                next.push(b);
            }
        }
        out = next;
    }
    out
}

/// A matrix's instances, the excluded ones left out; None when the matrix itself is invalid
/// (its issues are pushed).
fn matrix_instances(
    base: &str,
    rs: &RawStage,
    m: &Matrix,
    issues: &mut Vec<SpecIssue>,
) -> Option<Vec<IndexMap<String, Value>>> {
    let mpos = pos_of(m.referenced);
    let mut ok = true;
    for (var, values) in &m.value {
        if !valid_base_name(var) || interp::is_runtime(var) {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: invalid matrix variable `{}`", var),
                mpos,
            ));
            ok = false;
        }
        if values.is_empty() {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: matrix variable `{var}` has no values"),
                mpos,
            ));
            ok = false;
        }
        for v in values {
            if v.is_object() || v.is_array() || v.is_null() {
                issues.push(SpecIssue::new(
                    format!(
                        "stage `{base}`: matrix values must be strings, numbers or booleans (`{var}` has {v})"
                    ),
                    mpos,
                ));
                ok = false;
            }
        }
    }
    let count = m
        .value
        .values()
        .try_fold(1usize, |n, v| n.checked_mul(v.len()));
    if count.is_none_or(|n| n > MAX_INSTANCES) {
        issues.push(SpecIssue::new(
            format!(
                "stage `{base}`: the matrix has {} combinations; at most {MAX_INSTANCES} are allowed per stage",
                count.map_or("too many".to_string(), |n| n.to_string())
            ),
            mpos,
        ));
        ok = false;
    }
    if !ok {
        return None;
    }
    let all = combinations(&m.value);
    let excluded = |b: &IndexMap<String, Value>| {
        rs.exclude
            .iter()
            .any(|ex| ex.value.iter().all(|(k, v)| b.get(k) == Some(v)))
    };
    for ex in &rs.exclude {
        if let Some(k) = ex.value.keys().find(|k| !m.value.contains_key(*k)) {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: exclude names `{k}`, which is not a matrix variable"),
                pos_of(ex.referenced),
            ));
        }
    }
    let kept: Vec<_> = all.into_iter().filter(|b| !excluded(b)).collect();
    if kept.is_empty() {
        issues.push(SpecIssue::new(
            format!("stage `{base}`: `exclude` removes every combination of the matrix"),
            mpos,
        ));
    }
    Some(kept)
}

/// A stage's command with its matrix values filled in; None (with the issue reported through
/// `err`) when it is empty, unreadable or longer than the system runs.
fn command_line(
    c: &serde_saphyr::Spanned<RawCommand>,
    bindings: &IndexMap<String, Value>,
    err: &mut dyn FnMut(String, Option<Pos>),
) -> Option<CommandLine> {
    let p = pos_of(c.referenced);
    let sub = |s: &String| interp::substitute(s, bindings, true);
    let r = match &c.value {
        RawCommand::Shell(s) if s.trim().is_empty() => {
            err("`command` is empty".into(), p);
            return None;
        }
        RawCommand::Shell(s) => sub(s).map(CommandLine::Shell),
        RawCommand::Argv(v) if v.is_empty() => {
            err("`command` is an empty list".into(), p);
            return None;
        }
        RawCommand::Argv(v) => v
            .iter()
            .map(sub)
            .collect::<Result<_, _>>()
            .map(CommandLine::Argv),
    };
    let r = r.map_err(|e| err(format!("in `command`: {e}"), p)).ok()?;
    // Linux refuses any single argument over MAX_ARG_STRLEN (128 KiB) at exec time.
    let longest = match &r {
        CommandLine::Shell(s) => s.len(),
        CommandLine::Argv(v) => v.iter().map(String::len).max().unwrap_or(0),
    };
    if longest >= MAX_ARG {
        err(
            format!(
                "`command` has an argument of {longest} bytes; the system runs none over {MAX_ARG} (128 KiB): put the commands in a script, list it in `inputs` and run that"
            ),
            p,
        );
        return None;
    }
    Some(r)
}

/// A stage's environment with its matrix values filled in; bad names and values are reported
/// through `err` and left out.
fn environment(
    rs: &RawStage,
    bindings: &IndexMap<String, Value>,
    err: &mut dyn FnMut(String, Option<Pos>),
) -> IndexMap<String, String> {
    let mut env = IndexMap::new();
    for (k, v) in &rs.env {
        if let Some(why) = crate::process::env_name_problem(k) {
            err(format!("in `env`: {why}"), pos_of(v.referenced));
            continue;
        }
        match interp::substitute(&v.value, bindings, true) {
            Ok(s) if s.contains('\0') => err(
                format!("in `env.{k}`: the value contains a NUL character"),
                pos_of(v.referenced),
            ),
            Ok(s) => {
                env.insert(k.clone(), s);
            }
            Err(e) => err(format!("in `env.{k}`: {e}"), pos_of(v.referenced)),
        }
    }
    env
}

fn expand(raw: &RawPipeline, kinds: &Registry, issues: &mut Vec<SpecIssue>) -> Vec<Stage> {
    let default_with = raw
        .defaults
        .with
        .as_ref()
        .map(|w| w.value.clone())
        .unwrap_or_default();
    let default_resources = raw.defaults.resources.unwrap_or_default();
    // First pass: instances and their names, so needs can be resolved against all of them.
    let mut stages: Vec<Stage> = Vec::new();
    let mut raw_needs: Vec<Vec<(String, Option<Pos>)>> = Vec::new();
    let mut seen: HashMap<String, Option<Pos>> = HashMap::new();
    for (base, spanned) in &raw.stages {
        let rs: &RawStage = &spanned.value;
        let stage_pos = pos_of(spanned.referenced);
        if !valid_base_name(base) {
            issues.push(
                SpecIssue::new(format!("invalid stage name `{}`", base), stage_pos).help(format!(
                    "stage names use letters, digits, `_`, `-` and `.` (not `.` or `..` alone), at most {MAX_NAME} of them"
                )),
            );
            continue;
        }
        let kind_pos = pos_of(rs.kind.referenced);
        let kind = rs.kind.value.clone();
        let Some(kind_info) = kinds.lookup(&kind) else {
            issues.push(
                SpecIssue::new(format!("stage `{base}`: unknown kind `{kind}`"), kind_pos)
                    .help(format!("known kinds: {}", kinds.names().join(", "))),
            );
            continue;
        };
        check_kind_fields(base, rs, kind_info.is_command(), stage_pos, issues);
        // `search.space` joins the matrix; its sample is applied after expansion.
        let merged = match merge_search(base, rs, issues) {
            Some(m) => m,
            None => continue,
        };
        let instances = match &merged {
            None => vec![IndexMap::new()],
            Some(m) => match matrix_instances(base, rs, m, issues) {
                Some(kept) => kept,
                None => continue,
            },
        };
        let instances = match &rs.search {
            Some(search) => sample_search(&search.value, instances),
            None => instances,
        };
        if rs.exclude.iter().len() > 0 && merged.is_none() {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: `exclude` needs a `matrix`"),
                stage_pos,
            ));
        }
        for bindings in instances {
            let name = instance_name(base, &bindings);
            if let Some(prev) = seen.insert(name.clone(), stage_pos) {
                let at = prev
                    .map(|p| format!(" (first at line {})", p.line))
                    .unwrap_or_default();
                issues.push(SpecIssue::new(
                    format!("duplicate stage name `{name}`{at}"),
                    stage_pos,
                ));
                continue;
            }
            let mut err = |msg: String, pos: Option<Pos>| {
                issues.push(SpecIssue::new(format!("stage `{name}`: {msg}"), pos))
            };
            // Parameters: defaults first, the stage's own on top.
            let mut params = serde_json::Map::new();
            for (k, v) in default_with.iter() {
                params.insert(k.clone(), v.clone());
            }
            if let Some(w) = &rs.with {
                for (k, v) in &w.value {
                    params.insert(k.clone(), v.clone());
                }
            }
            // `key: null` unsets a default for this stage.
            params.retain(|_, v| !v.is_null());
            let with_pos = rs
                .with
                .as_ref()
                .and_then(|w| pos_of(w.referenced))
                .or(stage_pos);
            let params = match interp::substitute_value(&Value::Object(params), &bindings) {
                Ok(Value::Object(p)) => p,
                Ok(_) => unreachable!("an object stays an object"),
                Err(e) => {
                    err(format!("in `with`: {e}"), with_pos);
                    continue;
                }
            };
            if let Err(e) = kind_info.validate(&params) {
                err(e.to_string(), with_pos);
            }
            let resources = Resources::with_defaults(rs.resources, default_resources);
            if resources.cpus == 0 {
                err("`resources.cpus` must be at least 1".into(), stage_pos);
            }
            let command = rs
                .command
                .as_ref()
                .and_then(|c| command_line(c, &bindings, &mut err));
            let mut sub_list =
                |list: &[serde_saphyr::Spanned<String>], what: &str, runtime: bool| {
                    list.iter()
                        .filter_map(|s| {
                            interp::substitute(&s.value, &bindings, runtime)
                                .map_err(|e| err(format!("in `{what}`: {e}"), pos_of(s.referenced)))
                                .ok()
                        })
                        .collect::<Vec<_>>()
                };
            let mut inputs = sub_list(&rs.inputs, "inputs", false);
            let outputs = sub_list(&rs.outputs, "outputs", false);
            for f in kind_info.key_files(&params) {
                if Path::new(&f).is_absolute() || f.split('/').any(|c| c == "..") {
                    err(
                        format!("`{f}` must be a path inside the pipeline's directory"),
                        with_pos,
                    );
                }
                inputs.push(f);
            }
            let content = kind_info.key_content(&params).into_iter().collect();
            let runs_python = kind_info.runs_python(&params);
            let python = match (&rs.python, &raw.python) {
                (Some(p), _) if !runs_python => {
                    err(
                        "`python` applies only to stages that run Python (an `unlearn` stage with `method: {python: SCRIPT}`)".into(),
                        pos_of(p.referenced),
                    );
                    None
                }
                (Some(p), _) | (None, Some(p)) if runs_python => {
                    if p.value.trim().is_empty() {
                        err("`python` is empty".into(), pos_of(p.referenced));
                    }
                    Some(p.value.clone())
                }
                _ => None,
            };
            let needs: Vec<(String, Option<Pos>)> = rs
                .needs
                .iter()
                .filter_map(|n| {
                    interp::substitute(&n.value, &bindings, false)
                        .map(|s| (s, pos_of(n.referenced)))
                        .map_err(|e| err(format!("in `needs`: {e}"), pos_of(n.referenced)))
                        .ok()
                })
                .collect();
            let env = environment(rs, &bindings, &mut err);
            for o in &outputs {
                if Path::new(o).is_absolute() || o.split('/').any(|c| c == "..") {
                    err(
                        format!("output `{o}` must be a relative path inside the output directory"),
                        stage_pos,
                    );
                }
            }
            raw_needs.push(needs);
            stages.push(Stage {
                name,
                base: base.clone(),
                bindings,
                kind: kind.clone(),
                kind_version: kind_info.version(&params),
                worker: kind_info.worker(),
                cutoff: kind_info.cutoff(),
                needs: Vec::new(),
                params,
                resources,
                command,
                inputs,
                content,
                outputs,
                env,
                python,
                description: rs.description.clone(),
                pos: stage_pos,
            });
        }
    }
    resolve_needs(&mut stages, raw_needs, issues);
    check_input_placeholders(&stages, issues);
    check_requirements(&stages, kinds, issues);
    stages
}

/// Every file a stage's kind reads from its needs can come from them: the need `with` names
/// provides it, or exactly one need does. A `command` need may write anything, so it counts as a
/// possible provider without settling which need is meant.
fn check_requirements(stages: &[Stage], kinds: &Registry, issues: &mut Vec<SpecIssue>) {
    let by_name: HashMap<&str, &Stage> = stages.iter().map(|s| (s.name.as_str(), s)).collect();
    for s in stages {
        let Some(kind) = kinds.lookup(&s.kind) else {
            continue;
        };
        let need = |n: &str| by_name.get(n).copied();
        for msg in kind.check_needs(s, &need) {
            issues.push(SpecIssue::new(format!("stage `{}`: {msg}", s.name), s.pos));
        }
        for req in kind.requires(&s.params) {
            let needs: Vec<&Stage> = s
                .needs
                .iter()
                .filter_map(|n| by_name.get(n.as_str()).copied())
                .collect();
            let provides = |n: &Stage| match kinds.lookup(&n.kind) {
                Some(k) if k.is_command() => None,
                Some(k) => Some(k.provides().contains(&req.file)),
                None => Some(false),
            };
            let issue = if let Some(named) = &req.named {
                let role = req.role.unwrap_or_default();
                let hits: Vec<&Stage> = needs
                    .iter()
                    .copied()
                    .filter(|n| n.name == *named || n.base == *named)
                    .collect();
                match hits.as_slice() {
                    [] => Some(format!(
                        "`{role}: {named}` is not among its needs ({})",
                        list(&s.needs)
                    )),
                    [n] if provides(n) == Some(false) => Some(format!(
                        "`{role}: {named}` names a `{}` stage, which does not write {}",
                        n.kind, req.file
                    )),
                    [_] => None,
                    many if req.several => {
                        many.iter().find(|n| provides(n) == Some(false)).map(|n| {
                            format!(
                                "`{role}: {named}` names a `{}` stage, which does not write {}",
                                n.kind, req.file
                            )
                        })
                    }
                    many => Some(format!(
                        "`{role}: {named}` matches {} of its needs; use the full name",
                        many.len()
                    )),
                }
            } else {
                let known = needs.iter().filter(|n| provides(n) == Some(true)).count();
                let maybe = needs.iter().any(|n| provides(n).is_none());
                let providers: Vec<&str> = kinds
                    .names()
                    .into_iter()
                    .filter(|k| {
                        kinds
                            .lookup(k)
                            .is_some_and(|k| k.provides().contains(&req.file))
                    })
                    .collect();
                let name_it = req
                    .role
                    .map(|r| format!("; name the one to use with `{r}:`"))
                    .unwrap_or_default();
                if known == 0 && !maybe {
                    Some(format!(
                        "reads {} from its needs, but none provides it (needs: {}); add a `{}` stage to `needs`",
                        req.file,
                        list(&s.needs),
                        providers.join("` or `")
                    ))
                } else if known > 1 {
                    Some(format!(
                        "{known} of its needs provide {}{name_it}",
                        req.file
                    ))
                } else {
                    None
                }
            };
            if let Some(msg) = issue {
                issues.push(SpecIssue::new(format!("stage `{}`: {msg}", s.name), s.pos));
            }
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Every `${in.X}` in a command or its environment names one of the stage's needs, as the stage
/// process will resolve it (a full name, or a declared name that matches exactly one need).
fn check_input_placeholders(stages: &[Stage], issues: &mut Vec<SpecIssue>) {
    let base: std::collections::HashMap<&str, &str> = stages
        .iter()
        .map(|s| (s.name.as_str(), s.base.as_str()))
        .collect();
    for s in stages {
        let mut texts: Vec<&str> = s.env.values().map(String::as_str).collect();
        match &s.command {
            Some(CommandLine::Shell(c)) => texts.push(c),
            Some(CommandLine::Argv(v)) => texts.extend(v.iter().map(String::as_str)),
            None => {}
        }
        for text in texts {
            let Ok(pieces) = interp::parse(text) else {
                continue;
            };
            for piece in pieces {
                let interp::Piece::Var(name) = piece else {
                    continue;
                };
                let Some(want) = name.strip_prefix("in.") else {
                    continue;
                };
                let matches = s
                    .needs
                    .iter()
                    .filter(|n| *n == want || base.get(n.as_str()) == Some(&want))
                    .count();
                let exact = s.needs.iter().any(|n| n == want);
                if !exact && matches != 1 {
                    let why = if matches == 0 {
                        format!("`{want}` is not among its needs")
                    } else {
                        format!("`{want}` matches {matches} of its needs; use the full name")
                    };
                    issues.push(SpecIssue::new(
                        format!("stage `{}`: `${{in.{want}}}`: {why}", s.name),
                        s.pos,
                    ));
                }
            }
        }
    }
}

fn check_kind_fields(
    base: &str,
    rs: &RawStage,
    is_command: bool,
    pos: Option<Pos>,
    issues: &mut Vec<SpecIssue>,
) {
    if is_command {
        if rs.command.is_none() {
            issues.push(SpecIssue::new(
                format!("stage `{base}`: kind `command` needs a `command`"),
                pos,
            ));
        }
        return;
    }
    let extra = [
        ("command", rs.command.is_some()),
        ("inputs", !rs.inputs.is_empty()),
        ("outputs", !rs.outputs.is_empty()),
        ("env", !rs.env.is_empty()),
    ];
    for (field, present) in extra {
        if present {
            issues.push(SpecIssue::new(
                format!(
                    "stage `{base}`: `{field}` applies only to kind `command`, not `{}`",
                    rs.kind.value
                ),
                pos,
            ));
        }
    }
}

/// Resolves each need to stage instances: an exact expanded name, or a declared name whose
/// instances agree with this stage on every matrix variable they share (so `train` under
/// `dataset=mnist,seed=0` needs `split@dataset=mnist,seed=0`, and a stage without `seed` needs
/// every seed's instance). A trailing `?` makes a need optional: no matching instance is fine.
fn resolve_needs(
    stages: &mut [Stage],
    raw_needs: Vec<Vec<(String, Option<Pos>)>>,
    issues: &mut Vec<SpecIssue>,
) {
    let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, s) in stages.iter().enumerate() {
        by_base.entry(s.base.as_str()).or_default().push(i);
        by_name.insert(s.name.as_str(), i);
    }
    let mut resolved: Vec<Vec<String>> = Vec::with_capacity(stages.len());
    for (i, needs) in raw_needs.iter().enumerate() {
        let me = &stages[i];
        let mut out: Vec<String> = Vec::new();
        for (need, pos) in needs {
            // `name?`: an optional need, for stages that exist for only part of a matrix.
            let (need, optional) = match need.strip_suffix('?') {
                Some(n) => (&n.to_string(), true),
                None => (need, false),
            };
            let targets: Vec<usize> = if let Some(&j) = by_name.get(need.as_str()) {
                vec![j]
            } else if let Some(cands) = by_base.get(need.as_str()) {
                let agree: Vec<usize> = cands
                    .iter()
                    .copied()
                    .filter(|&j| {
                        stages[j]
                            .bindings
                            .iter()
                            .all(|(k, v)| me.bindings.get(k).is_none_or(|mine| mine == v))
                    })
                    .collect();
                if agree.is_empty() && !optional {
                    issues.push(SpecIssue::new(
                        format!(
                            "stage `{}`: need `{need}` has no instance matching {}",
                            me.name,
                            instance_name("", &me.bindings).trim_start_matches('@')
                        ),
                        *pos,
                    ));
                }
                agree
            } else {
                let mut known: Vec<&str> = by_base.keys().copied().collect();
                known.sort();
                issues.push(
                    SpecIssue::new(format!("stage `{}`: unknown need `{need}`", me.name), *pos)
                        .help(format!("stages in this pipeline: {}", known.join(", "))),
                );
                Vec::new()
            };
            for j in targets {
                if j == i {
                    issues.push(SpecIssue::new(
                        format!("stage `{}` needs itself", me.name),
                        *pos,
                    ));
                } else if !out.contains(&stages[j].name) {
                    out.push(stages[j].name.clone());
                }
            }
        }
        resolved.push(out);
    }
    for (s, needs) in stages.iter_mut().zip(resolved) {
        s.needs = needs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Pipeline, SpecError> {
        parse(
            Path::new("/p/test.yaml"),
            text.to_string(),
            &Registry::core(),
        )
    }

    #[test]
    fn matrix_needs_follow_bindings() {
        let p = load_str(
            r#"
stages:
  data:
    kind: command
    command: "true"
    matrix: {dataset: [a, b]}
  train:
    kind: command
    command: "echo ${dataset} ${seed}"
    needs: [data]
    matrix: {dataset: [a, b], seed: [0, 1]}
    with: {seed: "${seed}"}
  compare:
    kind: command
    command: "true"
    needs: [train]
"#,
        )
        .unwrap();
        let t = p.stage("train@dataset=b,seed=1").unwrap();
        assert_eq!(t.needs, vec!["data@dataset=b"]);
        assert_eq!(t.params["seed"], serde_json::json!(1));
        assert_eq!(t.command, Some(CommandLine::Shell("echo b 1".into())));
        assert_eq!(p.stage("compare").unwrap().needs.len(), 4);
    }

    #[test]
    fn optional_needs_may_match_nothing() {
        let text = "stages:\n  a: {kind: command, command: 'true', matrix: {d: [x]}}\n  b: {kind: command, command: 'true', matrix: {d: [x, y]}, needs: ['a?']}\n";
        let p = load_str(text).unwrap();
        assert_eq!(p.stage("b@d=x").unwrap().needs, ["a@d=x"]);
        assert!(p.stage("b@d=y").unwrap().needs.is_empty());
        assert!(load_str(&text.replace("'a?'", "a")).is_err());
    }

    #[test]
    fn search_expands_like_a_matrix_and_samples_a_seeded_subset() {
        let names = |text: &str| -> Vec<String> {
            let p = load_str(text).unwrap();
            p.stages.iter().map(|s| s.name.clone()).collect()
        };
        let grid = names(
            "stages:\n  t:\n    kind: command\n    command: 'echo ${lr} ${epochs}'\n    matrix: {s: [a]}\n    search: {space: {lr: [1, 2], epochs: [3, 4]}}\n",
        );
        assert_eq!(
            grid,
            [
                "t@s=a,lr=1,epochs=3",
                "t@s=a,lr=1,epochs=4",
                "t@s=a,lr=2,epochs=3",
                "t@s=a,lr=2,epochs=4"
            ]
        );
        let sampled = |values: &str, seed: u64| {
            names(&format!(
                "stages:\n  t:\n    kind: command\n    command: 'echo ${{lr}}'\n    matrix: {{s: [a, b]}}\n    search: {{space: {{lr: [{values}]}}, sample: 3, seed: {seed}}}\n"
            ))
        };
        let first = sampled("1, 2, 3, 4, 5, 6, 7, 8", 0);
        // 3 of the 8 values, the same 3 for every matrix instance, the same on every load.
        assert_eq!(first.len(), 6);
        assert_eq!(first, sampled("1, 2, 3, 4, 5, 6, 7, 8", 0));
        let lrs = |v: &[String]| {
            let mut l: Vec<String> = v
                .iter()
                .map(|n| n.rsplit('=').next().unwrap().to_string())
                .collect();
            l.sort();
            l.dedup();
            l
        };
        assert_eq!(lrs(&first).len(), 3);
        assert_ne!(
            lrs(&first),
            lrs(&sampled("1, 2, 3, 4, 5, 6, 7, 8", 1)),
            "the seed chooses"
        );
        // A value added to the space displaces at most one sampled trial.
        let more = sampled("1, 2, 3, 4, 5, 6, 7, 8, 9", 0);
        let kept = lrs(&first)
            .iter()
            .filter(|l| lrs(&more).contains(l))
            .count();
        assert!(kept >= 2, "{first:?} -> {more:?}");
        // The order of the space's keys does not matter.
        let two = |order: &str| {
            let p = load_str(&format!(
                "stages:\n  t:\n    kind: command\n    command: 'echo ${{a}} ${{b}}'\n    search: {{space: {order}, sample: 4, seed: 0}}\n"
            ))
            .unwrap();
            let mut names: Vec<String> = p
                .stages
                .iter()
                .map(|s| format!("a={},b={}", s.bindings["a"], s.bindings["b"]))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            two("{a: [1, 2, 3], b: [4, 5, 6]}"),
            two("{b: [4, 5, 6], a: [1, 2, 3]}")
        );
        let clash = load_str(
            "stages:\n  t: {kind: command, command: 'true', matrix: {lr: [1]}, search: {space: {lr: [2]}}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            clash.contains("both a matrix and a search variable"),
            "{clash}"
        );
    }

    #[test]
    fn exclude_drops_combinations() {
        let p = load_str(
            "stages:\n  s:\n    kind: command\n    command: 'true'\n    matrix: {a: [1, 2], b: [x, y]}\n    exclude: [{a: 2, b: y}]\n",
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["s@a=1,b=x", "s@a=1,b=y", "s@a=2,b=x"]);
    }

    #[test]
    fn errors_carry_positions() {
        let e =
            load_str("stages:\n  a:\n    kind: command\n    command: 'true'\n    needs: [zzz]\n")
                .unwrap_err();
        assert_eq!(e.issues[0].pos.map(|p| p.line), Some(5));
        assert!(e.to_string().contains("unknown need `zzz`"), "{e}");
        let e = load_str("stages:\n  a:\n    kind: command\n    comand: 'true'\n").unwrap_err();
        assert_eq!(e.issues[0].pos.map(|p| p.line), Some(4), "{e}");
    }
}
