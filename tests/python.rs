//! Methods written in PyTorch: the `camu_pipe` package against camu-worker (forward of every
//! architecture, the data of every part of a split), and `unlearn` stages running Python scripts
//! through the real binary: real forgetting, keys, reasons, the way out of the cache, and every
//! kind of failure.
//!
//! They need a Python with torch, numpy and safetensors: `CAMU_TEST_PYTHON`, which
//! scripts/setup.sh writes into .cargo/config.toml. Without it they skip with a message, except
//! under CI (`CI=true`), where they fail.

mod common;

use camu_torch::data::split::{self, Scenario};
use camu_torch::data::{Dataset, Family, Meta};
use camu_torch::models::{Arch, Model, ModelSpec, prepare};
use common::{Fixture, stages_with};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter the tests use, or None (with a message) where none is provisioned.
fn python() -> Option<PathBuf> {
    match std::env::var("CAMU_TEST_PYTHON") {
        Ok(p) if !p.is_empty() && Path::new(&p).exists() => Some(PathBuf::from(p)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI: CAMU_TEST_PYTHON is not set; scripts/setup.sh provisions it")
        }
        _ => {
            eprintln!(
                "SKIPPED: no CAMU_TEST_PYTHON (a Python with torch; scripts/setup.sh provisions it)"
            );
            None
        }
    }
}

/// Runs a Python script with the repository's package first on the path.
fn run_py(py: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(py)
        .args(args)
        .env("PYTHONPATH", root().join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(path: &Path, tensors: &[(&str, &Tensor)]) {
    Tensor::write_safetensors(tensors, path).unwrap();
}

/// Gives batch-norm layers non-trivial running statistics, so eval mode is really checked.
fn randomise_bn(m: &Model) {
    tch::no_grad(|| {
        for (name, mut t) in m.vs.variables() {
            if name.ends_with("running_mean") {
                t.copy_(&(Tensor::rand_like(&t) - 0.5));
            } else if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand_like(&t) + 0.5));
            }
        }
    });
}

#[test]
fn every_architecture_computes_the_same_forward_in_pytorch() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    {
        let _g = rng();
        for (arch, channels, side, n) in [
            (Arch::Cnn, 1, 28, 8),
            (Arch::Resnet18Cifar, 3, 32, 4),
            (Arch::Resnet18, 3, 224, 2),
        ] {
            tch::manual_seed(7);
            let spec = ModelSpec {
                arch,
                classes: 10,
                channels,
            };
            let m = Model::new(spec, Device::Cpu);
            randomise_bn(&m);
            let d = dir.path().join(format!("{arch:?}"));
            std::fs::create_dir_all(&d).unwrap();
            m.save(&d).unwrap();
            let x = Tensor::randn([n, channels, side, side], (Kind::Float, Device::Cpu));
            let (le, ee) = tch::no_grad(|| m.forward(&x, false));
            let (lt, et) = tch::no_grad(|| m.forward(&x, true));
            write(
                &d.join("expected.safetensors"),
                &[
                    ("x", &x),
                    ("logits_eval", &le),
                    ("emb_eval", &ee),
                    ("logits_train", &lt),
                    ("emb_train", &et),
                ],
            );
        }
    }
    let script = root().join("tests/python/parity.py");
    let (script, d) = (script.to_str().unwrap(), dir.path().to_str().unwrap());
    let (ok, out) = run_py(&py, &[script, "models", d]);
    assert!(ok, "forward parity failed:\n{out}");
    eprintln!("{out}");
    for arch in ["Cnn", "Resnet18Cifar", "Resnet18"] {
        assert!(out.contains(&format!("{arch}: logits (eval)")), "{out}");
    }
    // The check can fail: one weight moved by 1e-3 is caught.
    let (ok, out) = run_py(&py, &[script, "models", d, "--perturb-weight"]);
    assert!(!ok, "a perturbed weight went unnoticed:\n{out}");
    assert!(out.contains("MISMATCH"), "{out}");
}

#[test]
fn fisher_forgetting_computes_the_per_sample_fisher_of_its_reference() {
    let Some(py) = python() else { return };
    let script = root().join("tests/python/check_fisher.py");
    let (ok, out) = run_py(&py, &[script.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("resnet18_cifar: 62 parameters checked"),
        "{out}"
    );
}

/// A small dataset of the given family with random images.
fn dataset(family: Family, channels: i64, side: i64, n_train: i64, n_test: i64) -> Dataset {
    let img = |n| Tensor::randint(256, [n, channels, side, side], (Kind::Uint8, Device::Cpu));
    let lab = |n| Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    Dataset {
        meta: Meta {
            name: "parity".into(),
            family,
            classes: 10,
            channels,
            height: side,
            width: side,
            n_train,
            n_test,
        },
        train_x: img(n_train),
        train_y: lab(n_train),
        test_x: img(n_test),
        test_y: lab(n_test),
    }
}

#[test]
fn loaders_yield_the_samples_camu_worker_prepares() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    {
        let _g = rng();
        for (case, family, arch, channels, n) in [
            ("mnist_cnn", Family::Mnist, Arch::Cnn, 1, 32),
            (
                "cifar_resnet18_cifar",
                Family::Cifar,
                Arch::Resnet18Cifar,
                3,
                32,
            ),
            ("cifar_resnet18", Family::Cifar, Arch::Resnet18, 3, 3),
        ] {
            tch::manual_seed(3);
            let side = if family == Family::Mnist { 28 } else { 32 };
            let data = dataset(family, channels, side, 400, 100);
            let d = dir.path().join(case);
            std::fs::create_dir_all(&d).unwrap();
            data.save(&d).unwrap();
            let labels = Vec::<i64>::try_from(&data.train_y).unwrap();
            let mut s =
                split::make(&labels, Scenario::Random { fraction: 0.1 }, 5, 1).expect("split");
            s.validation = Some(split::validation(100, 0.2, 0));
            std::fs::write(d.join("split.json"), serde_json::to_vec(&s).unwrap()).unwrap();
            Model::new(
                ModelSpec {
                    arch,
                    classes: 10,
                    channels,
                },
                Device::Cpu,
            )
            .save(&d)
            .unwrap();
            let test = s
                .test_indices(camu_lab::protocol::EvalOn::Test, 100)
                .unwrap()
                .unwrap();
            let parts: Vec<(&str, Vec<i64>, bool)> = vec![
                ("all", (0..400).collect(), true),
                ("forget", s.forget.clone(), true),
                ("remain", s.remain.clone(), true),
                ("sample", s.sample.clone(), true),
                ("test", test, false),
                ("validation", s.validation.clone().unwrap(), false),
            ];
            let mut owned: Vec<(String, Tensor)> = Vec::new();
            for (part, idx, train) in parts {
                let (xs, ys) = if train {
                    (&data.train_x, &data.train_y)
                } else {
                    (&data.test_x, &data.test_y)
                };
                let t = Tensor::from_slice(&idx);
                let head = t.narrow(0, 0, n.min(idx.len() as i64));
                let x = prepare(&xs.index_select(0, &head), family, arch, false, Device::Cpu);
                owned.push((format!("{part}_indices"), t));
                owned.push((format!("{part}_x"), x));
                owned.push((format!("{part}_y"), ys.index_select(0, &head)));
            }
            let refs: Vec<(&str, &Tensor)> = owned.iter().map(|(k, v)| (k.as_str(), v)).collect();
            write(&d.join("expected.safetensors"), &refs);
        }
    }
    let script = root().join("tests/python/parity.py");
    let (script, d) = (script.to_str().unwrap(), dir.path().to_str().unwrap());
    let (ok, out) = run_py(&py, &[script, "loaders", d]);
    assert!(ok, "loader parity failed:\n{out}");
    eprintln!("{out}");
    assert!(out.contains("cifar_resnet18/validation"), "{out}");
    assert!(out.contains("augmented samples are padded crops"), "{out}");
    // The check can fail: one normalisation constant moved by 1e-3 is caught.
    let (ok, out) = run_py(&py, &[script, "loaders", d, "--perturb-mean"]);
    assert!(!ok, "a perturbed normalisation went unnoticed:\n{out}");
    assert!(out.contains("MISMATCH: cifar_resnet18_cifar/all"), "{out}");
}

/// A method that truly forgets: Df relabelled to the next class, trained beside Dr.
const RELABEL: &str = r#"
import itertools
import torch
import torch.nn.functional as F

def unlearn(ctx):
    model = ctx.original_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=ctx.param("lr", 0.01), momentum=0.9)
    for _ in range(ctx.param("epochs", 2)):
        forget = itertools.cycle(list(ctx.loader("forget", batch_size=32)))
        for xr, yr in ctx.loader("remain", batch_size=64):
            x, y = next(forget)
            loss = F.cross_entropy(model(x)[0], (y + 1) % ctx.classes) + F.cross_entropy(model(xr)[0], yr)
            opt.zero_grad()
            loss.backward()
            opt.step()
    ctx.record(note="relabel")
    return model
"#;

const PIPELINE: &str = r#"
defaults:
  with: {device: cpu}
stages:
  data:
    kind: download
    with: {dataset: synthetic, n_train: 1500, n_test: 400, device: null}
  original:
    kind: train
    needs: [data]
    with: {epochs: 2}
  split:
    kind: split
    needs: [data]
    with: {scenario: class, classes: [0], device: null}
  retrain:
    kind: train
    needs: [data, split]
    with: {on: remain, epochs: 2}
  relabel:
    kind: unlearn
    needs: [data, split, original]
    with: {method: {python: methods/relabel.py, modules: [methods/helper.py]}, lr: 0.01}
  evaluate:
    kind: evaluate
    needs: [data, split, "${model}", retrain]
    matrix: {model: [retrain, original, relabel]}
    with: {model: "${model}", reference: retrain, mia_samples: 100}
"#;

fn python_fixture(py: &Path) -> Fixture {
    let f = Fixture::new();
    f.write("p.yaml", &format!("python: {}\n{PIPELINE}", py.display()));
    f.write("methods/relabel.py", RELABEL);
    f.write(
        "methods/helper.py",
        "# imported by nothing; keyed with the script\n",
    );
    f
}

fn record_of(f: &Fixture, stage: &str) -> serde_json::Value {
    let out = f.run(&["path", "p.yaml", stage]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn a_python_method_forgets_is_keyed_by_its_files_and_loads_back() {
    let Some(py) = python() else { return };
    let f = python_fixture(&py);
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(stages_with(&ev, "finished").contains(&"relabel".to_string()));

    let m = record_of(&f, "relabel");
    assert_eq!(m["method"], "relabel");
    assert_eq!(m["source"]["python"], "methods/relabel.py");
    assert_eq!(m["source"]["modules"][0]["path"], "methods/helper.py");
    assert_eq!(m["hyperparameters"]["lr"], 0.01);
    assert_eq!(m["hyperparameters"]["epochs"], 2);
    assert_eq!(m["note"], "relabel");
    assert!(m["unlearn_time_s"].as_f64().unwrap() > 0.0);
    assert!(m["torch_version"].as_str().unwrap().starts_with('2'));

    // Real forgetting: the original knows class 0, the Python method's model does not, and it
    // keeps the other classes.
    let ev_orig = record_of(&f, "evaluate@model=original");
    let ev_py = record_of(&f, "evaluate@model=relabel");
    assert!(ev_orig["acc_forget_train"].as_f64().unwrap() > 0.9);
    assert!(ev_py["acc_forget_train"].as_f64().unwrap() < 0.1, "{ev_py}");
    assert!(ev_py["acc_remain_train"].as_f64().unwrap() > 0.9, "{ev_py}");
    assert_eq!(
        ev_py["provenance"]["model"]["source"]["python"],
        "methods/relabel.py"
    );
    let report = f.run(&["report", "p.yaml", "--out", "rep"]);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("| relabel |"), "{text}");
    assert!(
        text.contains("Methods written in Python: relabel: `methods/relabel.py`"),
        "{text}"
    );

    // No __pycache__ beside the script: nothing outside the cache is written.
    assert!(!f.path("methods/__pycache__").exists());

    // The way out: the package loads the cached model by pipeline and stage.
    let bin_dir = common::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&py)
        .current_dir(f.dir.path())
        .args([
            "-c",
            "import camu_pipe, torch\n\
             m = camu_pipe.load_model('p.yaml', 'relabel')\n\
             logits, emb = m(torch.zeros(2, 1, 28, 28))\n\
             print(tuple(logits.shape), tuple(emb.shape))",
        ])
        .env("PYTHONPATH", root().join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PATH", path)
        .env("CAMU_CACHE_DIR", f.path("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "(2, 10) (2, 256)"
    );

    // Editing the script re-runs that method and its evaluation only, and status says why.
    let script = f.read("methods/relabel.py");
    f.write("methods/relabel.py", &format!("{script}\n# edited\n"));
    let st = f.run(&["status", "p.yaml"]);
    let st = String::from_utf8_lossy(&st.stdout);
    let line = |stage: &str| {
        st.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(stage))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("relabel").contains("input file methods/relabel.py changed"),
        "{st}"
    );
    assert!(line("evaluate@model=relabel").contains("upstream will run: relabel"));
    assert!(line("retrain").starts_with("cached"), "{st}");
    let (ev, code, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0);
    assert_eq!(
        stages_with(&ev, "finished"),
        ["evaluate@model=relabel", "relabel"]
    );
    // So does a declared module.
    f.write("methods/helper.py", "# changed\n");
    let st = f.run(&["status", "p.yaml"]);
    assert!(String::from_utf8_lossy(&st.stdout).contains("input file methods/helper.py changed"));
}

#[test]
fn a_script_edited_during_the_run_is_not_cached_under_its_old_key() {
    let Some(py) = python() else { return };
    let f = python_fixture(&py);
    // `relabel` hashes the script when the run keys it; `edit` then changes the script before
    // `again`, which runs the same script, starts.
    let p = f.read("p.yaml").replace(
        "  evaluate:\n",
        "  edit:\n    kind: command\n    needs: [relabel]\n    command: \"echo '# edited' >> methods/relabel.py\"\n  again:\n    kind: unlearn\n    needs: [data, split, original, edit]\n    with: {method: {python: methods/relabel.py, modules: [methods/helper.py]}, lr: 0.01, seed: 1}\n  evaluate:\n",
    );
    f.write("p.yaml", &p);
    let out = f.run(&["run", "p.yaml", "again"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("methods/relabel.py changed after this run computed the stage's key"),
        "{err}"
    );
    let st = f.run(&["status", "p.yaml", "again"]);
    let st = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.lines()
            .any(|l| l.starts_with("run") && l.contains(" again ")),
        "{st}"
    );
}

/// Runs `p.yaml` with the Python method replaced by `script` and returns (exit code, stderr).
fn failing(py: &Path, script: Option<&str>, edit: impl Fn(&Fixture)) -> (Fixture, i32, String) {
    let f = python_fixture(py);
    if let Some(s) = script {
        f.write("methods/relabel.py", s);
    }
    edit(&f);
    let out = f.run(&["run", "p.yaml", "relabel"]);
    let code = out.status.code().unwrap_or(-1);
    (f, code, String::from_utf8_lossy(&out.stderr).to_string())
}

fn not_cached(f: &Fixture) {
    let st = f.run(&["status", "p.yaml", "relabel"]);
    let st = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.lines()
            .any(|l| l.starts_with("run") && l.contains(" relabel ")),
        "a failed Python stage must not be cached:\n{st}"
    );
}

#[test]
fn python_method_failures_are_stage_errors_and_nothing_is_cached() {
    let Some(py) = python() else { return };
    // A script that does not exist: refused before anything runs, naming stage and file.
    let (_f, code, err) = failing(&py, None, |f| {
        std::fs::remove_file(f.path("methods/relabel.py")).unwrap();
    });
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("relabel") && err.contains("methods/relabel.py"),
        "{err}"
    );

    let cases: [(&str, &str, &str); 4] = [
        (
            "def unlearn(ctx)\n    return None\n",
            "syntax error in",
            "syntax",
        ),
        (
            "def unlearn(ctx):\n    raise ValueError('boom')\n",
            "unlearn() raised ValueError: boom",
            "raises",
        ),
        (
            "def unlearn(ctx):\n    ctx.original_model()\n",
            "saved no model",
            "no model",
        ),
        (
            "x = 1\n",
            "defines no function `unlearn(ctx)`",
            "no unlearn",
        ),
    ];
    for (script, says, what) in cases {
        let (f, code, err) = failing(&py, Some(script), |_| {});
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains("python method `relabel`"), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        not_cached(&f);
    }

    // A parameter the script never reads (a typo) is refused, as built-ins refuse unknown ones.
    let (f, code, err) = failing(&py, None, |f| {
        let p = f.read("p.yaml").replace("lr: 0.01", "lrr: 0.01");
        f.write("p.yaml", &p);
    });
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("never read parameter(s) `lrr`"), "{err}");
    not_cached(&f);

    // torch missing, and torch too old: a package named torch that fails to import, or reports
    // version 1.13, first on the path.
    for (init, says) in [
        (
            "raise ImportError('No module named torch (test)')\n",
            "torch cannot be imported",
        ),
        ("__version__ = '1.13.0'\n", "is too old"),
    ] {
        let f = python_fixture(&py);
        f.write("shadow/torch/__init__.py", init);
        let out = f
            .cmd(&["run", "p.yaml", "relabel"])
            .env("PYTHONPATH", f.path("shadow"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "{err}");
        not_cached(&f);
    }

    // An interpreter that does not exist.
    let f = Fixture::new();
    f.write(
        "p.yaml",
        &format!("python: /nonexistent/python3\n{PIPELINE}"),
    );
    f.write("methods/relabel.py", RELABEL);
    f.write("methods/helper.py", "\n");
    let out = f.run(&["run", "p.yaml", "relabel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot start the interpreter `/nonexistent/python3`"),
        "{err}"
    );
    not_cached(&f);
}
