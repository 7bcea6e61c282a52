//! The ML lab on small real data: learning, forgetting, determinism, metrics on constructed
//! models, and the ML stage kinds end to end through the binary.

mod common;

use camu_torch::data::split::{self, Scenario};
use camu_torch::data::{self, Dataset};
use camu_torch::methods::{self, Context};
use camu_torch::metrics::{EvalOptions, evaluate};
use camu_torch::models::{Arch, Model, ModelSpec};
use camu_torch::train::{TrainConfig, test_accuracy, train};
use common::{Fixture, stages_with};
use serde_json::Map;
use tch::{Device, Kind, Tensor};

/// libtorch's generator is process-wide and tests run on parallel threads: every test that seeds
/// it holds this lock, so each sees exactly the draws its seed gives.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first `n_train` / `n_test` samples of real Fashion-MNIST (Debian's package), or None with
/// a message when it is not installed (scripts/setup.sh installs it).
fn fashion(n_train: i64, n_test: i64) -> Option<Dataset> {
    if !std::path::Path::new("/usr/share/datasets/fashion-mnist").exists() {
        eprintln!(
            "SKIPPED: /usr/share/datasets/fashion-mnist is absent (apt-get install dataset-fashion-mnist)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ds =
        data::obtain("fashion_mnist", dir.path(), &[]).expect("Debian's Fashion-MNIST verifies");
    assert_eq!(ds.train_x.size(), [60000, 1, 28, 28]);
    ds.train_x = ds.train_x.narrow(0, 0, n_train);
    ds.train_y = ds.train_y.narrow(0, 0, n_train);
    ds.test_x = ds.test_x.narrow(0, 0, n_test);
    ds.test_y = ds.test_y.narrow(0, 0, n_test);
    ds.meta.n_train = n_train;
    ds.meta.n_test = n_test;
    Some(ds)
}

fn cnn(seed: i64) -> Model {
    tch::manual_seed(seed);
    Model::new(
        ModelSpec {
            arch: Arch::Cnn,
            classes: 10,
            channels: 1,
        },
        Device::Cpu,
    )
}

fn all(n: i64) -> Tensor {
    Tensor::arange(n, (Kind::Int64, Device::Cpu))
}

fn cfg(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        ..TrainConfig::default()
    }
}

#[test]
fn training_learns_fashion_mnist() {
    let _rng = rng();
    tch::set_num_threads(2);
    let Some(ds) = fashion(10000, 2000) else {
        return;
    };
    let mut m = cnn(0);
    let before = test_accuracy(&m, &ds);
    let report = train(&mut m, &ds, &all(10000), &cfg(3)).unwrap();
    let after = test_accuracy(&m, &ds);
    eprintln!(
        "test accuracy {before:.3} -> {after:.3}, {:.0} img/s",
        report.images_per_s
    );
    assert!(
        after >= 0.80,
        "test accuracy {after} after 3 epochs on 10k images"
    );
    assert!(report.epochs[2].loss < report.epochs[0].loss);
}

/// CaMU's fast loop (teacher embeddings computed once, fused forwards) computes what the
/// reference's literal loop computes. In float the two differ by rounding, which Adam amplifies
/// over hundreds of steps; in double precision the rounding is 1e-16 and the weights must agree
/// to 1e-9 after every step of both scenarios.
#[test]
fn camu_fast_loop_matches_the_literal_loop() {
    let _rng = rng();
    tch::set_num_threads(2);
    let Some(ds) = fashion(4000, 1000) else {
        return;
    };
    let mut original = cnn(0);
    train(&mut original, &ds, &all(4000), &cfg(1)).unwrap();
    let mut original = original.duplicate().unwrap();
    original.vs.set_kind(Kind::Double);
    let labels = Vec::<i64>::try_from(&ds.train_y).unwrap();
    for scenario in [
        Scenario::Class { classes: vec![0] },
        Scenario::Random { fraction: 0.1 },
    ] {
        let sp = split::make(&labels, scenario, 0, 1).unwrap();
        let run = |how: &str| {
            let mut params = Map::new();
            params.insert("loop".into(), serde_json::json!(how));
            let ctx = Context {
                original: &original,
                data: &ds,
                split: &sp,
                device: Device::Cpu,
                seed: 0,
                params: &params,
                original_record: &Default::default(),
            };
            methods::lookup("camu").unwrap().run(&ctx).unwrap().model
        };
        let (fast, literal) = (run("fast"), run("literal"));
        let literal_vars = literal.vs.variables();
        let mut worst = 0f64;
        for (name, a) in fast.vs.variables() {
            assert_eq!(a.kind(), Kind::Double);
            let b = &literal_vars[&name];
            let d = (&a - b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]);
            worst = worst.max(d / scale);
            assert!(
                d / scale < 1e-9,
                "{name}: max difference {d} (scale {scale})"
            );
        }
        // And the unlearning did move the weights, so the comparison is not of two copies.
        let moved = original.vs.variables()["fc1.weight"].shallow_clone();
        let shift = (&fast.vs.variables()["fc1.weight"] - moved)
            .abs()
            .max()
            .double_value(&[]);
        assert!(shift > 1e-3, "CaMU left fc1 where it was ({shift})");
        eprintln!("largest relative weight difference: {worst:.2e}");
    }
}

#[test]
fn camu_forgets_a_class_and_keeps_the_rest() {
    let _rng = rng();
    tch::set_num_threads(2);
    let Some(ds) = fashion(10000, 2000) else {
        return;
    };
    let mut original = cnn(0);
    train(&mut original, &ds, &all(10000), &cfg(2)).unwrap();
    let labels = Vec::<i64>::try_from(&ds.train_y).unwrap();
    let sp = split::make(&labels, Scenario::Class { classes: vec![0] }, 0, 1).unwrap();
    let opts = EvalOptions {
        mia: false,
        mia_samples: 0,
        batch: 512,
        seed: 0,
        mia_export: None,
        per_class: false,
        cka_samples: None,
    };
    let before = evaluate(&original, None, &ds, &sp, &opts).unwrap();
    let params = Map::new();
    let ctx = Context {
        original: &original,
        data: &ds,
        split: &sp,
        device: Device::Cpu,
        seed: 0,
        params: &params,
        original_record: &Default::default(),
    };
    let out = methods::lookup("camu").unwrap().run(&ctx).unwrap();
    let after = evaluate(&out.model, None, &ds, &sp, &opts).unwrap();
    let g = |m: &Map<String, serde_json::Value>, k: &str| m[k].as_f64().unwrap();
    eprintln!("before {before:?}\nafter  {after:?}");
    assert!(
        g(&before, "acc_forget_train") > 0.5,
        "the original model must know class 0 first"
    );
    assert!(
        g(&after, "acc_forget_train") < 0.10,
        "train accuracy on the forgotten class"
    );
    assert!(
        g(&after, "acc_test_forget") < 0.10,
        "test accuracy on the forgotten class"
    );
    let drop = g(&before, "acc_test_remain") - g(&after, "acc_test_remain");
    assert!(drop <= 0.03, "remaining-class test accuracy fell by {drop}");
    // The original model is untouched.
    let again = evaluate(&original, None, &ds, &sp, &opts).unwrap();
    assert_eq!(
        g(&again, "acc_forget_train"),
        g(&before, "acc_forget_train")
    );
}

#[test]
fn same_seed_same_weights_on_cpu() {
    let _rng = rng();
    tch::set_num_threads(1);
    let ds = data::synthetic(0, 10, 600, 100, 0.5);
    let run = |seed| {
        let mut m = cnn(seed);
        tch::manual_seed(seed);
        train(&mut m, &ds, &all(600), &cfg(1)).unwrap();
        m
    };
    let (a, b, c) = (run(3), run(3), run(4));
    let differs = |x: &Model, y: &Model| {
        x.named_tensors()
            .iter()
            .zip(y.named_tensors().iter())
            .any(|((_, p), (_, q))| !p.equal(q))
    };
    assert!(!differs(&a, &b), "same seed gave different weights");
    assert!(differs(&a, &c), "different seeds gave identical weights");
}

/// A CNN whose output is a constant class: all weights zero, one bias large.
fn constant_model(class: i64) -> Model {
    let m = cnn(0);
    tch::no_grad(|| {
        for (name, mut t) in m.vs.variables() {
            let _ = t.zero_();
            if name == "fc3.bias" {
                let _ = t.get(class).fill_(10.0);
            }
        }
    });
    m
}

#[test]
fn metrics_on_models_with_known_answers() {
    let _rng = rng();
    let ds = data::synthetic(1, 10, 1000, 400, 0.5);
    let labels = Vec::<i64>::try_from(&ds.train_y).unwrap();
    let sp = split::make(&labels, Scenario::Class { classes: vec![3] }, 0, 1).unwrap();
    let opts = EvalOptions {
        mia: true,
        mia_samples: 150,
        batch: 256,
        seed: 0,
        mia_export: None,
        per_class: false,
        cka_samples: None,
    };
    // Always predicts class 3: accuracy = share of class 3; perfect on the forgotten class.
    let m3 = constant_model(3);
    let r = evaluate(&m3, Some(&m3), &ds, &sp, &opts).unwrap();
    let test_y = Vec::<i64>::try_from(&ds.test_y).unwrap();
    let share3 = test_y.iter().filter(|&&y| y == 3).count() as f64 / test_y.len() as f64;
    let g = |k: &str| r[k].as_f64().unwrap();
    assert!((g("acc_test") - share3).abs() < 1e-9);
    assert_eq!(g("acc_forget_train"), 1.0);
    assert_eq!(g("acc_test_forget"), 1.0);
    assert_eq!(g("acc_test_remain"), 0.0);
    assert_eq!(g("acc_remain_train"), 0.0);
    // Identical to its reference: zero divergence.
    assert!(g("kl_to_retrain_forget").abs() < 1e-9 && g("js_to_retrain_test").abs() < 1e-9);
    assert!(g("activation_distance").abs() < 1e-9);
    // Identical outputs on members and non-members: the attack is at chance.
    assert!((g("mia_camu") - 0.5).abs() < 0.1, "{}", g("mia_camu"));
    // Against a model that always says class 5, the divergence is known: KL(onehot3 || onehot5)-like.
    let m5 = constant_model(5);
    let r = evaluate(&m3, Some(&m5), &ds, &sp, &opts).unwrap();
    let p_hi = (10f64).exp() / ((10f64).exp() + 9.0);
    let p_lo = 1.0 / ((10f64).exp() + 9.0);
    let kl = p_hi * (p_hi / p_lo).ln() + p_lo * (p_lo / p_hi).ln();
    assert!((r["kl_to_retrain_test"].as_f64().unwrap() - kl).abs() < 1e-4);
}

const PIPELINE: &str = r#"
defaults:
  with: {device: cpu}
stages:
  data:
    kind: download
    with: {dataset: synthetic, n_train: 1500, n_test: 500, device: null}
  original:
    kind: train
    needs: [data]
    with: {epochs: 1}
  split:
    kind: split
    needs: [data]
    matrix: {scenario: [random, class]}
    with: {scenario: "${scenario}", device: null}
  retrain:
    kind: train
    needs: [data, split]
    matrix: {scenario: [random, class]}
    with: {on: remain, epochs: 1}
  camu:
    kind: unlearn
    needs: [data, split, original]
    matrix: {scenario: [random, class]}
    with: {method: camu, impair_epochs: 1}
  evaluate:
    kind: evaluate
    needs: [data, split, "${model}", retrain]
    matrix: {scenario: [random, class], model: [retrain, camu]}
    with: {model: "${model}", reference: retrain, mia_samples: 100}
"#;

#[test]
fn ml_pipeline_caches_and_reruns_only_camu() {
    let _rng = rng();
    let f = Fixture::new();
    f.write("p.yaml", PIPELINE);
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stages_with(&ev, "finished").len(), 12);
    let record = |stage: &str| {
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
        let key = rows.iter().find(|r| r["stage"] == stage).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string();
        let text = f.read(&format!("cache/records/{key}.json"));
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let ev_class = record("evaluate@scenario=class,model=camu");
    assert_eq!(ev_class["metrics"]["method"], "camu");
    assert!(ev_class["metrics"]["acc_forget_train"].as_f64().unwrap() < 0.5);
    assert!(ev_class["metrics"]["unlearn_time_s"].as_f64().unwrap() > 0.0);
    let train = record("original");
    assert!(
        train["metrics"]["epochs"][0]["images_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let (ev, _, _) = f.run_json(&["run", "p.yaml"]);
    assert!(
        stages_with(&ev, "finished").is_empty(),
        "second run executed something"
    );

    f.write(
        "p.yaml",
        &PIPELINE.replace("impair_epochs: 1", "impair_epochs: 1, kl_lr: 0.0002"),
    );
    let (ev, code, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0);
    assert_eq!(
        stages_with(&ev, "finished"),
        [
            "camu@scenario=class",
            "camu@scenario=random",
            "evaluate@scenario=class,model=camu",
            "evaluate@scenario=random,model=camu"
        ]
    );
}

#[test]
fn bad_ml_parameters_are_rejected_before_running() {
    let _rng = rng();
    let f = Fixture::new();
    f.write(
        "p.yaml",
        &PIPELINE.replace("method: camu", "method: camu, impair_lr: fast"),
    );
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("parameter `impair_lr` must be a number"),
        "{err}"
    );
    f.write(
        "p.yaml",
        &PIPELINE.replace("method: camu", "method: forgetful"),
    );
    let err = String::from_utf8_lossy(&f.run(&["run", "p.yaml"]).stderr).to_string();
    assert!(err.contains("unknown method `forgetful`"), "{err}");
}

#[test]
fn device_auto_falls_back_to_the_cpu_and_cuda_without_a_gpu_fails_before_any_work() {
    let _rng = rng();
    if tch::Cuda::is_available() {
        eprintln!("skipped: this machine has a CUDA device");
        return;
    }
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  data:\n    kind: download\n    with: {dataset: synthetic, n_train: 300, n_test: 100}\n  auto:\n    kind: train\n    needs: [data]\n    with: {epochs: 1, device: auto}\n  cuda:\n    kind: train\n    needs: [data]\n    with: {epochs: 1, device: cuda}\n",
    );
    let (ev, code, _) = f.run_json(&["run", "p.yaml", "--keep-going"]);
    assert_eq!(code, 1);
    assert_eq!(stages_with(&ev, "failed"), ["cuda"]);
    let failed = ev.iter().find(|e| e["event"] == "failed").unwrap();
    let text = format!("{} {}", failed["error"], failed["tail"]);
    assert!(
        text.contains("device `cuda` requested but libtorch sees no CUDA device"),
        "{text}"
    );
    // The device is chosen first: the stage loaded and trained nothing.
    let log = std::fs::read_to_string(failed["log"].as_str().unwrap()).unwrap();
    assert!(!log.contains("training"), "{log}");
    // `auto` ran on the CPU and says so in its log and record.
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key = rows.iter().find(|r| r["stage"] == "auto").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let record: serde_json::Value =
        serde_json::from_str(&f.read(&format!("cache/records/{key}.json"))).unwrap();
    assert_eq!(record["metrics"]["device"], "cpu");
    let log = f.read(&format!("cache/logs/{key}.log"));
    assert!(
        log.contains("no CUDA device visible, running on the CPU"),
        "{log}"
    );
}

#[test]
fn a_mismatched_libtorch_is_refused_before_ml_stages_run() {
    let f = Fixture::new();
    f.write("torch/lib/libtorch_cpu.so", "");
    f.write("torch/version.py", "__version__ = '2.13.0+cu130'\n");
    f.write(
        "p.yaml",
        "stages:\n  data:\n    kind: download\n    with: {dataset: synthetic, n_train: 300, n_test: 100}\n",
    );
    let out = f
        .cmd(&["run", "p.yaml"])
        .env("LD_LIBRARY_PATH", f.path("torch/lib"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("libtorch 2.13.0+cu130") && err.contains("built for 2.11.0"),
        "{err}"
    );
    let records = std::fs::read_dir(f.path("cache/records")).map_or(0, |d| d.count());
    assert_eq!(records, 0, "nothing may run");
}

/// Trials of a method as a matrix, scored on the split's validation part of the test set, a
/// `select` stage, and an `unlearn` that takes the chosen values with `from:` and is reported on
/// the rest of the test set: the chosen values reach the method, and no sample behind the
/// reported numbers was read by the selection.
#[test]
fn an_unlearn_stage_runs_with_the_values_a_select_stage_chose() {
    let _rng = rng();
    let f = Fixture::new();
    f.write(
        "p.yaml",
        r#"
defaults:
  with: {device: cpu}
stages:
  data:
    kind: download
    with: {dataset: synthetic, n_train: 1200, n_test: 400, device: null}
  original: {kind: train, needs: [data], with: {epochs: 1}}
  split: {kind: split, needs: [data], with: {scenario: class, validation: 0.3, device: null}}
  retrain: {kind: train, needs: [data, split], with: {on: remain, epochs: 1}}
  retrain_val:
    kind: evaluate
    needs: [data, split, retrain]
    with: {model: retrain, mia: false, on: validation}
  trial:
    kind: unlearn
    needs: [data, split, original]
    matrix: {lr: [0.5, 0.01, 1e20]}
    with: {method: finetune, epochs: 1, lr: "${lr}"}
  trial_val:
    kind: evaluate
    needs: [data, split, trial, retrain]
    matrix: {lr: [0.5, 0.01, 1e20]}
    with: {model: trial, reference: retrain, mia: false, on: validation}
  pick:
    kind: select
    needs: [trial_val, retrain_val]
    with: {reference: retrain_val, vars: [lr], device: null}
  final:
    kind: unlearn
    needs: [data, split, original, pick]
    with: {method: finetune, epochs: 1, from: pick}
  final_test:
    kind: evaluate
    needs: [data, split, final, retrain]
    with: {model: final, reference: retrain, mia: false}
"#,
    );
    let (_, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key = |stage: &str| {
        rows.iter().find(|r| r["stage"] == stage).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let json = |rel: String| serde_json::from_str::<serde_json::Value>(&f.read(&rel)).unwrap();
    let selected = json(format!("cache/out/{}/selected.json", key("pick")));
    let lr = &selected["values"]["lr"];
    assert!(lr == 0.5 || lr == 0.01, "{selected}");
    // The trial at lr 1e20 diverges: its stage still succeeds (the run above exited 0), its
    // evaluation says so, and the selection passed it over.
    let diverging = rows
        .iter()
        .filter_map(|r| r["stage"].as_str())
        .find(|s| s.starts_with("trial@") && !s.contains("lr=0."))
        .unwrap();
    let un = json(format!("cache/records/{}.json", key(diverging)));
    assert!(
        un["metrics"]["diverged_in"]
            .as_str()
            .is_some_and(|w| w.contains("loss became")),
        "{un}"
    );
    let ev = json(format!(
        "cache/records/{}.json",
        key(&diverging.replace("trial@", "trial_val@"))
    ));
    assert_eq!(ev["metrics"]["diverged"], true, "{ev}");
    let fin = json(format!("cache/records/{}.json", key("final")));
    assert_eq!(fin["metrics"]["selected"]["lr"], *lr, "{fin}");
    assert_eq!(
        fin["metrics"]["hyperparameters"]["lr"], *lr,
        "the method ran with {fin}"
    );

    // What each evaluation read: the selection's only the validation part, the report's only
    // the rest.
    let split = json(format!("cache/out/{}/split.json", key("split")));
    let validation: Vec<i64> = serde_json::from_value(split["validation"].clone()).unwrap();
    assert_eq!(validation.len(), 120);
    let read = |stage: &str| -> Vec<i64> {
        serde_json::from_value(json(format!("cache/out/{}/test_indices.json", key(stage)))).unwrap()
    };
    for stage in ["retrain_val", "trial_val@lr=0.5", "trial_val@lr=0.01"] {
        assert_eq!(read(stage), validation, "{stage}");
    }
    let reported = read("final_test");
    assert_eq!(reported.len(), 280);
    assert!(reported.iter().all(|i| !validation.contains(i)));
    let ev = json(format!("cache/records/{}.json", key("final_test")));
    assert_eq!(ev["metrics"]["test_set"], "test");
    assert_eq!(ev["metrics"]["method"], "finetune (tuned)");
    assert_eq!(ev["metrics"]["selected"]["lr"], *lr);
    // The report's tables leave out the evaluations on the validation part.
    let out = f.run(&["report", "p.yaml"]);
    let table = String::from_utf8_lossy(&out.stdout);
    // The tuned row names the chosen values, and the search is shown with every trial.
    assert!(
        table.contains(&format!("| finetune (tuned): lr {lr} |")),
        "{table}"
    );
    assert!(table.contains("**Search for finetune**"), "{table}");
    assert!(
        !table.contains("| finetune |"),
        "a trial's evaluation is in the tables: {table}"
    );
    assert_eq!(ev["metrics"]["n_test"], 280);
}

/// Four retrained runs against four more (other seeds), and against four copies of one original
/// model: the audit's F is above 0 for the first and exactly 0 for the second, where every
/// forget example is capped and the per-example attack tells the sides apart.
const AUDIT: &str = r#"
defaults:
  with: {device: cpu}
stages:
  data:
    kind: download
    with: {dataset: synthetic, n_train: 1500, n_test: 500, device: null}
  split:
    kind: split
    needs: [data]
    with: {scenario: class, classes: [0], device: null}
  retrain:
    kind: train
    needs: [data, split]
    matrix: {run: [0, 1, 2, 3]}
    with: {on: remain, epochs: 2, seed: "${run}"}
  other:
    kind: train
    needs: [data, split]
    matrix: {run: [4, 5, 6, 7]}
    with: {on: remain, epochs: 2, seed: "${run}"}
  original:
    kind: train
    needs: [data]
    matrix: {run: [0, 1, 2, 3]}
    with: {epochs: 2, seed: 0}
  same:
    kind: audit
    needs: [data, split, retrain, other]
    with: {retrained: retrain, unlearned: other}
  untouched:
    kind: audit
    needs: [data, split, retrain, original]
    with: {retrained: retrain, unlearned: original}
  evaluate:
    kind: evaluate
    needs: [data, split, original, retrain]
    matrix: {run: [0]}
    with: {model: original, reference: retrain, per_class: true, cka: true, cka_samples: 200}
"#;

#[test]
fn audit_scores_retrain_above_an_untouched_original_which_scores_zero() {
    let _rng = rng();
    let f = Fixture::new();
    f.write("p.yaml", AUDIT);
    let out = f.run(&["run", "p.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |stage: &str, file: &str| -> serde_json::Value {
        let dir = String::from_utf8(f.run(&["path", "p.yaml", stage]).stdout).unwrap();
        serde_json::from_str(&std::fs::read_to_string(format!("{}/{file}", dir.trim())).unwrap())
            .unwrap()
    };
    let split = read("split", "split.json");
    let forget: Vec<i64> = serde_json::from_value(split["forget"].clone()).unwrap();
    for stage in ["same", "untouched"] {
        let a = read(stage, "metrics.json");
        assert_eq!(a["runs"], 4, "{stage}: {a}");
        assert_eq!(a["examples"], forget.len(), "{stage}");
        let eps = read(stage, "epsilons.json");
        let eps = eps.as_array().unwrap();
        assert_eq!(eps.len(), forget.len());
        assert!(eps.iter().zip(&forget).all(|(e, &i)| e["index"] == i));
    }
    let same = read("same", "metrics.json");
    let untouched = read("untouched", "metrics.json");
    // Every example in the histogram; the untouched original's all at the cap, the last bin.
    let bins = |a: &serde_json::Value| -> Vec<u64> {
        serde_json::from_value(a["epsilon_bins"]["counts"].clone()).unwrap()
    };
    assert_eq!(bins(&same).iter().sum::<u64>() as usize, forget.len());
    assert_eq!(*bins(&untouched).last().unwrap() as usize, forget.len());
    assert_eq!(untouched["hardest"].as_array().unwrap().len(), 10);
    let num = |a: &serde_json::Value, k: &str| a[k].as_f64().unwrap();
    assert_eq!(num(&untouched, "forgetting_quality"), 0.0, "{untouched}");
    assert_eq!(untouched["epsilon_capped"], untouched["examples"]);
    assert!(num(&untouched, "ulira_accuracy") > 0.9, "{untouched}");
    assert!(num(&same, "forgetting_quality") > 0.05, "{same}");
    assert!(num(&same, "ulira_accuracy") < num(&untouched, "ulira_accuracy"));

    // The report ranks the two audits with its bootstrap, draws their epsilons and puts the
    // original's F beside its evaluation.
    let out = f.run(&["report", "p.yaml", "--out", "rep"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(f.path("rep/comparison.md")).unwrap();
    assert!(
        md.contains("- 4 runs a side (retrained: retrain): retrain (other) ")
            && md.contains("> original (original) 0.000; this whole order holds in 100.0% of 1000"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| original |"))
        .unwrap_or_else(|| panic!("{md}"));
    let ulira = format!("{:.3} |", num(&untouched, "ulira_accuracy"));
    assert!(row.ends_with(&format!(" 0.000 | 0.000 | {ulira}")), "{row}");
    assert!(f.path("rep/epsilons-synthetic-class_0.svg").exists());

    // Per-class accuracies, against what they must be: Df is class 0 alone, Dr has none of it,
    // and the test accuracy lies among the classes' accuracies.
    let ev = read("evaluate@run=0", "metrics.json");
    let list = |k: &str| -> Vec<Option<f64>> { serde_json::from_value(ev[k].clone()).unwrap() };
    let (test, forget, remain) = (
        list("acc_test_per_class"),
        list("acc_forget_per_class"),
        list("acc_remain_per_class"),
    );
    assert!(test.len() >= 2 && test.len() == forget.len() && forget.len() == remain.len());
    assert_eq!(forget[0], Some(num(&ev, "acc_forget_train")));
    assert!(forget[1..].iter().all(Option::is_none), "{forget:?}");
    assert_eq!(remain[0], None);
    let present: Vec<f64> = test.iter().flatten().copied().collect();
    let acc = num(&ev, "acc_test");
    let (lo, hi) = present
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    assert!(
        lo - 1e-12 <= acc && acc <= hi + 1e-12,
        "{acc} outside {present:?}"
    );
    // Layer-wise similarity to retrain: every CNN layer, each in (0, 1]; the original and
    // retrain (other data, other seed) differ most in their last layer.
    assert_eq!(ev["cka_samples"], 200);
    let cka = ev["cka_to_retrain"].as_array().unwrap();
    let layers: Vec<&str> = cka.iter().map(|l| l["layer"].as_str().unwrap()).collect();
    assert_eq!(layers, ["conv1", "conv2", "fc1", "fc2", "fc3"]);
    let v: Vec<f64> = cka.iter().map(|l| l["cka"].as_f64().unwrap()).collect();
    assert!(v.iter().all(|&x| x > 0.0 && x <= 1.0 + 1e-9), "{v:?}");
    assert!(v[4] < 0.999 && v[4] < v[0], "{v:?}");
    // The report page shows them as heatmaps.
    let page = std::fs::read_to_string(f.path("rep/report.html")).unwrap();
    assert!(
        page.contains("Layer-wise similarity to retrain: linear CKA"),
        "no CKA table"
    );
    assert!(
        page.contains("Per-class accuracy (%) on forget (train)"),
        "no heatmap"
    );

    // Too few runs, or unequal sides, are refused before anything runs.
    for (name, text, want) in [
        (
            "few.yaml",
            AUDIT.replace(
                "matrix: {run: [0, 1, 2, 3]}\n    with: {on: remain",
                "matrix: {run: [0, 1]}\n    with: {on: remain",
            ),
            "gives 2 run(s) among its needs; the audit needs at least 3 per side",
        ),
        (
            "unequal.yaml",
            AUDIT.replace("matrix: {run: [4, 5, 6, 7]}", "matrix: {run: [4, 5, 6]}"),
            "4 retrained runs and 3 unlearned runs",
        ),
    ] {
        f.write(name, &text);
        let out = f.run(&["status", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}
