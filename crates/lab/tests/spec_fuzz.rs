//! Property test of the pipeline loader and expander (YAML parsing, matrix expansion,
//! interpolation, validation of every kind, the DAG): on any input it returns a pipeline or an
//! error, never panics, and its error report stays short.
//!
//! In CI it runs a few hundred cases of each generator. For a long run:
//! `CAMU_FUZZ_SECONDS=600 cargo test --release -p camu-lab --test spec_fuzz -- --nocapture`.

use camu_core::graph::Dag;
use camu_core::spec::{self, Registry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Inputs that loaded as a valid pipeline, so the run shows it reached expansion and the DAG.
static LOADED: AtomicU64 = AtomicU64::new(0);

/// Loads `text` as a pipeline and checks what must hold whatever it is.
fn check(kinds: &Registry, text: &str) -> Result<(), TestCaseError> {
    match spec::parse(Path::new("/fuzz/p.yaml"), text.to_string(), kinds) {
        Ok(p) => {
            LOADED.fetch_add(1, Ordering::Relaxed);
            prop_assert!(!p.stages.is_empty());
            prop_assert!(p.stages.len() <= spec::MAX_STAGES);
            if let Err(e) = Dag::build(&p) {
                let shown = e.render(false);
                prop_assert!(shown.contains("p.yaml"));
            }
        }
        Err(e) => {
            prop_assert!(!e.issues.is_empty());
            let plain = e.to_string();
            let shown = e.render(false);
            prop_assert!(plain.contains("/fuzz/p.yaml"), "{plain}");
            // A few KB per problem at most, however long the offending line or value.
            let limit = 4096 * e.issues.len();
            prop_assert!(
                shown.len() <= limit,
                "{} bytes for {} issues",
                shown.len(),
                e.issues.len()
            );
        }
    }
    Ok(())
}

/// Values as they appear in pipelines, and ones that should be refused.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e309".to_string()),
        Just(".nan".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("''".to_string()),
        Just("fashion_mnist".to_string()),
        Just("synthetic".to_string()),
        Just("camu".to_string()),
        Just("remain".to_string()),
        Just("random".to_string()),
        Just("\"${seed}\"".to_string()),
        Just("\"${in.a}\"".to_string()),
        Just("\"${out}/x\"".to_string()),
        Just("\"${\"".to_string()),
        Just("!!python/object/apply:os.system [x]".to_string()),
        Just("&a [1, 2]".to_string()),
        Just("*a".to_string()),
        (-5i64..100).prop_map(|n| n.to_string()),
        (0.0f64..2.0).prop_map(|x| format!("{x}")),
        "[a-z_]{1,12}",
        "\"[ -~]{0,30}\"",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = scalar();
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|v| {
                let pairs: Vec<String> = v.into_iter().map(|(k, x)| format!("{k}: {x}")).collect();
                format!("{{{}}}", pairs.join(", "))
            }),
        ]
    })
}

/// Parameter names of every kind, and some that no kind has.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "dataset",
            "scenario",
            "fraction",
            "classes",
            "seed",
            "epochs",
            "lr",
            "batch_size",
            "on",
            "arch",
            "method",
            "model",
            "reference",
            "original",
            "split",
            "device",
            "limit_train",
            "n_train",
            "noise",
            "mia",
            "relearn",
            "proportions",
            "forget_repeat",
            "alpha",
            "impair_lr",
            "x",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,6}",
    ]
}

const NAMES: [&str; 6] = ["a", "b", "data", "split", "train", "a b"];
const KINDS: [&str; 8] = [
    "command", "download", "split", "train", "unlearn", "evaluate", "compare", "shell",
];

/// One stage, in flow style: `name: {kind: ..., ...}`.
fn stage() -> impl Strategy<Value = String> {
    (
        prop::sample::select(NAMES.to_vec()),
        prop::sample::select(KINDS.to_vec()),
        prop::option::of(prop::collection::vec(
            (prop::sample::select(NAMES.to_vec()), any::<bool>()),
            0..4,
        )),
        prop::option::of(prop::collection::vec((key(), value()), 0..5)),
        prop::option::of(prop::collection::vec(
            (
                prop::sample::select(vec!["seed", "scenario", "model", "x", "out"]),
                prop::collection::vec(scalar(), 0..4),
            ),
            1..3,
        )),
        prop::option::of(prop_oneof![
            Just("'echo ${seed} > ${out}/o'".to_string()),
            Just("[cat, '${in.a}/o']".to_string()),
            Just("''".to_string()),
            Just("[]".to_string()),
            Just("'${in.ghost}'".to_string()),
            Just("7".to_string()),
        ]),
        prop::option::of((
            0i64..3,
            prop::sample::select(vec!["0", "0.5", "1", "2", "-1", "1.5"]),
        )),
    )
        .prop_map(|(name, kind, needs, with, matrix, command, res)| {
            let mut fields = vec![format!("kind: {kind}")];
            if let Some(needs) = needs {
                let n: Vec<String> = needs
                    .iter()
                    .map(|(n, opt)| format!("'{n}{}'", if *opt { "?" } else { "" }))
                    .collect();
                fields.push(format!("needs: [{}]", n.join(", ")));
            }
            if let Some(with) = with {
                let w: Vec<String> = with.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                fields.push(format!("with: {{{}}}", w.join(", ")));
            }
            if let Some(matrix) = matrix {
                let m: Vec<String> = matrix
                    .iter()
                    .map(|(k, vs)| format!("{k}: [{}]", vs.join(", ")))
                    .collect();
                fields.push(format!("matrix: {{{}}}", m.join(", ")));
            }
            if let Some(c) = command {
                fields.push(format!("command: {c}"));
            }
            if let Some((cpus, gpus)) = res {
                fields.push(format!("resources: {{cpus: {cpus}, gpus: {gpus}}}"));
            }
            format!("  {name}: {{{}}}\n", fields.join(", "))
        })
}

/// A pipeline assembled from plausible parts: most are invalid in some way, some are valid.
fn structured() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::collection::vec((key(), value()), 0..3)),
        prop::collection::vec(stage(), 0..6),
    )
        .prop_map(|(defaults, stages)| {
            let mut text = String::new();
            if let Some(d) = defaults {
                let w: Vec<String> = d.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                text.push_str(&format!("defaults:\n  with: {{{}}}\n", w.join(", ")));
            }
            text.push_str("stages:\n");
            for s in stages {
                text.push_str(&s);
            }
            text
        })
}

/// A command-stage DAG that is mostly valid: needs on earlier stages (some optional, some
/// through a matrix), placeholders of needs and matrix variables, outputs, resources.
fn command_dag() -> impl Strategy<Value = String> {
    let stage = (
        prop::collection::vec((0usize..8, any::<bool>()), 0..3),
        prop::option::of(prop::sample::subsequence(vec![0u8, 1, 2, 3], 1..4)),
        prop::option::of(prop::sample::select(vec!["0", "1", "a"])),
        1usize..3,
        prop::sample::select(vec!["1", "0", "0.25", "1"]),
        any::<bool>(),
        prop::option::of(0usize..5),
    );
    prop::collection::vec(stage, 1..8).prop_map(|stages| {
        let mut text = String::from("stages:\n");
        for (i, (needs, seeds, exclude, cpus, gpus, argv, sample)) in stages.iter().enumerate() {
            text.push_str(&format!("  s{i}:\n    kind: command\n"));
            let needs: Vec<String> = needs
                .iter()
                .filter(|(j, _)| *j < i)
                .map(|(j, opt)| format!("'s{j}{}'", if *opt { "?" } else { "" }))
                .collect();
            let first = needs
                .first()
                .map(|n| n.trim_matches('\'').trim_end_matches('?').to_string());
            if !needs.is_empty() {
                text.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
            }
            if let Some(seeds) = seeds {
                let v: Vec<String> = seeds.iter().map(u8::to_string).collect();
                text.push_str(&format!("    matrix: {{seed: [{}]}}\n", v.join(", ")));
                if let Some(x) = exclude {
                    text.push_str(&format!("    exclude: [{{seed: {x}}}]\n"));
                }
            }
            let input = first.map(|n| format!(" ${{in.{n}}}/o")).unwrap_or_default();
            if *argv {
                text.push_str(&format!(
                    "    command: [sh, -c, 'cat{input} > ${{out}}/o']\n"
                ));
            } else {
                text.push_str(&format!(
                    "    command: 'cat{input} > ${{out}}/o; echo ${{threads}}'\n"
                ));
            }
            if let Some(n) = sample {
                text.push_str(&format!(
                    "    search: {{space: {{lr: [0.1, 0.01, 0.001], epochs: [1, 2]}}, sample: {n}, seed: {i}}}\n"
                ));
            }
            text.push_str("    outputs: [o]\n");
            text.push_str(&format!("    resources: {{cpus: {cpus}, gpus: {gpus}}}\n"));
        }
        text
    })
}

/// The experiment's stages with drawn parameters: valid when the values are in range.
fn ml_pipeline() -> impl Strategy<Value = String> {
    let w = || prop::collection::vec((key(), scalar()), 0..3);
    (w(), w(), w(), w(), w(), prop::sample::select(vec!["camu", "finetune", "scrub", "x"])).prop_map(
        |(d, s, t, u, e, method)| {
            let with = |base: &str, extra: Vec<(String, String)>| {
                let mut parts = vec![base.to_string()];
                parts.extend(extra.into_iter().map(|(k, v)| format!("{k}: {v}")));
                format!("{{{}}}", parts.join(", ").trim_start_matches(", "))
            };
            format!(
                "stages:\n  d: {{kind: download, with: {}}}\n  s: {{kind: split, needs: [d], matrix: {{scenario: [random, class]}}, with: {}}}\n  o: {{kind: train, needs: [d], with: {}}}\n  u: {{kind: unlearn, needs: [d, s, o], matrix: {{scenario: [random, class]}}, with: {}}}\n  e: {{kind: evaluate, needs: [d, s, u], matrix: {{scenario: [random, class]}}, with: {}}}\n  c: {{kind: compare, needs: [e]}}\n",
                with("dataset: synthetic", d),
                with("scenario: \"${scenario}\"", s),
                with("", t),
                with(&format!("method: {method}"), u),
                with("model: u", e),
            )
        },
    )
}

/// The repository's pipelines and malformed fixtures, to mutate.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in ["pipelines", "tests/fixtures/bad"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml")
                && let Ok(t) = std::fs::read_to_string(&p)
                && t.len() < 20_000
            {
                out.push(t);
            }
        }
    }
    assert!(
        out.len() > 10,
        "no seed pipelines found under {}",
        root.display()
    );
    out
}

/// A real pipeline with a few edits: deleted, inserted, duplicated or swapped bytes and lines.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let edit = (
        0u8..5,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        token(),
    );
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
            for (op, a, b, tok) in edits {
                if lines.is_empty() {
                    lines.push(tok);
                    continue;
                }
                let i = a.index(lines.len());
                let j = b.index(lines.len());
                let line = &mut lines[i];
                let at = (0..=line.len())
                    .filter(|&k| line.is_char_boundary(k))
                    .nth(b.index(line.len() + 1))
                    .unwrap_or(0);
                match op {
                    0 => line.insert_str(at, &tok),
                    1 => line.truncate(at),
                    2 => {
                        let dup = lines[i].clone();
                        lines.insert(j, dup);
                    }
                    3 => lines.swap(i, j),
                    _ => {
                        lines.remove(i);
                    }
                }
            }
            lines.join("\n")
        })
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            ":",
            " ",
            "  ",
            "\t",
            "-",
            "[",
            "]",
            "{",
            "}",
            ",",
            "'",
            "\"",
            "#",
            "&a ",
            "*a",
            "!!str ",
            "!x ",
            "? ",
            "|",
            ">",
            "%YAML 1.2",
            "---",
            "...",
            "${",
            "}",
            "${seed}",
            "${in.",
            "@",
            "?",
            "\u{feff}",
            "é",
            "\u{0}",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
        ("[a-z]{1,3}", 1usize..3000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

/// Any text at all, weighted towards YAML punctuation.
fn noise() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..40).prop_map(|t| t.concat())
}

/// Runs each generator for `CAMU_FUZZ_SECONDS` in all (default: a fixed number of cases each).
#[test]
fn the_loader_never_panics_and_reports_briefly() {
    let kinds = camu_lab::kinds::registry();
    let seconds: u64 = std::env::var("CAMU_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let seeds = seeds();
    let mut rounds = 0u64;
    loop {
        let config = Config {
            cases: 200,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config.clone());
        runner.run(&structured(), |t| check(&kinds, &t)).unwrap();
        let mut runner = TestRunner::new(config.clone());
        runner.run(&command_dag(), |t| check(&kinds, &t)).unwrap();
        let mut runner = TestRunner::new(config.clone());
        runner.run(&ml_pipeline(), |t| check(&kinds, &t)).unwrap();
        let mut runner = TestRunner::new(config.clone());
        runner
            .run(&mutated(seeds.clone()), |t| check(&kinds, &t))
            .unwrap();
        let mut runner = TestRunner::new(config);
        runner.run(&noise(), |t| check(&kinds, &t)).unwrap();
        rounds += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!(
        "{} cases without a failure, {} of them valid pipelines",
        rounds * 1000,
        LOADED.load(Ordering::Relaxed)
    );
}
