//! Every baseline on a small synthetic split, checked against what its definition says it does.

use camu_torch::MlError;
use camu_torch::data::split::{self, Scenario, Split};
use camu_torch::data::{self, Dataset, Family, Meta};
use camu_torch::methods::{self, Context, Outcome};
use camu_torch::metrics::{EvalOptions, evaluate};
use camu_torch::models::{Arch, Model, ModelSpec};
use camu_torch::train::{TrainConfig, train};
use serde_json::{Map, Value, json};
use tch::{Device, Kind, Tensor};

/// libtorch's generator is process-wide and tests run on parallel threads: every test that seeds
/// it holds this lock, so each sees exactly the draws its seed gives.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

struct Lab {
    data: Dataset,
    original: Model,
    class_split: Split,
    random_split: Split,
}

fn lab() -> Lab {
    tch::set_num_threads(1);
    let data = data::synthetic(7, 10, 2000, 500, 0.6);
    tch::manual_seed(0);
    let mut original = Model::new(
        ModelSpec {
            arch: Arch::Cnn,
            classes: 10,
            channels: 1,
        },
        Device::Cpu,
    );
    let idx = Tensor::arange(2000, (Kind::Int64, Device::Cpu));
    train(
        &mut original,
        &data,
        &idx,
        &TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let labels = Vec::<i64>::try_from(&data.train_y).unwrap();
    Lab {
        class_split: split::make(&labels, Scenario::Class { classes: vec![0] }, 0, 1).unwrap(),
        random_split: split::make(&labels, Scenario::Random { fraction: 0.1 }, 0, 1).unwrap(),
        data,
        original,
    }
}

fn run(lab: &Lab, method: &str, split: &Split, params: Value) -> Result<Outcome, MlError> {
    // The training record the original model's stage writes (`config` of `train`).
    let record = json!({"config": {"lr": 1e-3, "epochs": 2, "batch_size": 32}});
    run_with(lab, method, split, params, &record)
}

fn run_with(
    lab: &Lab,
    method: &str,
    split: &Split,
    params: Value,
    record: &Value,
) -> Result<Outcome, MlError> {
    let params: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    let record: Map<String, Value> = record.as_object().cloned().unwrap_or_default();
    let m = methods::lookup(method).unwrap();
    m.validate(&params)?;
    let ctx = Context {
        original: &lab.original,
        data: &lab.data,
        split,
        device: Device::Cpu,
        seed: 0,
        params: &params,
        original_record: &record,
    };
    m.run(&ctx)
}

/// A method's context on the lab's data without parameters.
fn context<'a>(lab: &'a Lab, split: &'a Split, none: &'a Map<String, Value>) -> Context<'a> {
    Context {
        original: &lab.original,
        data: &lab.data,
        split,
        device: Device::Cpu,
        seed: 0,
        params: none,
        original_record: none,
    }
}

fn metrics(lab: &Lab, model: &Model, split: &Split) -> Map<String, Value> {
    let opts = EvalOptions {
        mia: false,
        mia_samples: 0,
        batch: 512,
        seed: 0,
        mia_export: None,
        per_class: false,
        cka_samples: None,
    };
    evaluate(model, None, &lab.data, split, &opts).unwrap()
}

fn get(m: &Map<String, Value>, k: &str) -> f64 {
    m[k].as_f64().unwrap()
}

/// Mean cross-entropy on Df.
fn forget_loss(lab: &Lab, model: &Model, split: &Split) -> f64 {
    let idx = Tensor::from_slice(&split.forget);
    let x = lab.data.train_x.index_select(0, &idx).to_kind(Kind::Float) / 255.0;
    let y = lab.data.train_y.index_select(0, &idx);
    tch::no_grad(|| {
        model
            .forward(&x, false)
            .0
            .cross_entropy_for_logits(&y)
            .double_value(&[])
    })
}

/// Fraction of trainable weights bitwise identical to the original's.
fn unchanged_fraction(a: &Model, b: &Model) -> f64 {
    let (mut same, mut total) = (0i64, 0i64);
    for ((_, x), (_, y)) in a.named_tensors().iter().zip(b.named_tensors().iter()) {
        if !x.requires_grad() {
            continue;
        }
        same += x.eq_tensor(y).sum(Kind::Int64).int64_value(&[]);
        total += x.numel() as i64;
    }
    same as f64 / total as f64
}

fn l1(m: &Model) -> f64 {
    m.named_tensors()
        .iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(_, t)| t.abs().sum(Kind::Double).double_value(&[]))
        .sum()
}

#[test]
fn the_original_model_knows_everything_first() {
    let _rng = rng();
    let lab = lab();
    let m = metrics(&lab, &lab.original, &lab.class_split);
    assert!(
        get(&m, "acc_forget_train") > 0.95 && get(&m, "acc_remain_train") > 0.95,
        "{m:?}"
    );
}

#[test]
fn finetune_keeps_remaining_accuracy() {
    let _rng = rng();
    let lab = lab();
    let out = run(&lab, "finetune", &lab.class_split, json!({"epochs": 2})).unwrap();
    let m = metrics(&lab, &out.model, &lab.class_split);
    assert!(get(&m, "acc_remain_train") > 0.95, "{m:?}");
    assert!(
        unchanged_fraction(&lab.original, &out.model) < 0.5,
        "finetune did not train"
    );
}

#[test]
fn neggrad_raises_forget_loss_and_lowers_fa() {
    let _rng = rng();
    let lab = lab();
    let before = forget_loss(&lab, &lab.original, &lab.class_split);
    let out = run(
        &lab,
        "neggrad",
        &lab.class_split,
        json!({"optimizer": "adam", "lr": 1e-3, "epochs": 2}),
    )
    .unwrap();
    let after = forget_loss(&lab, &out.model, &lab.class_split);
    assert!(after > before + 1.0, "{before} -> {after}");
    assert!(
        get(
            &metrics(&lab, &out.model, &lab.class_split),
            "acc_forget_train"
        ) < 0.5
    );
}

#[test]
fn neggrad_plus_forgets_while_keeping_the_rest() {
    let _rng = rng();
    let lab = lab();
    let out = run(
        &lab,
        "neggrad_plus",
        &lab.class_split,
        json!({"epochs": 2, "alpha": 0.9, "lr": 1e-3}),
    )
    .unwrap();
    let m = metrics(&lab, &out.model, &lab.class_split);
    assert!(
        forget_loss(&lab, &out.model, &lab.class_split)
            > forget_loss(&lab, &lab.original, &lab.class_split)
    );
    assert!(get(&m, "acc_remain_train") > 0.9, "{m:?}");
    assert!(
        json!({"alpha": 1.5})
            .as_object()
            .map(|p| methods::lookup("neggrad_plus")
                .unwrap()
                .validate(p)
                .is_err())
            .unwrap()
    );
}

#[test]
fn relabelling_methods_lower_forget_accuracy() {
    let _rng = rng();
    let lab = lab();
    for (method, params) in [
        // Smaller steps than the published defaults: this synthetic task makes the original
        // model so confident that SGD at lr 0.013 kills its ReLUs in the first relabelled pass.
        ("random_label", json!({"epochs": 2, "lr": 1e-3})),
        ("amnesiac", json!({"epochs": 3, "lr": 1e-3})),
        ("salun", json!({"epochs": 2, "lr": 1e-3})),
        // The reference's CIFAR-100 branch: Df relabelled once per epoch, one pass with Dr.
        (
            "random_label",
            json!({"epochs": 2, "lr": 1e-3, "preset": "cifar100"}),
        ),
        (
            "salun",
            json!({"epochs": 2, "lr": 1e-3, "preset": "cifar100"}),
        ),
    ] {
        let out = run(&lab, method, &lab.class_split, params.clone()).unwrap();
        let h = &out.details["hyperparameters"];
        if method != "amnesiac" {
            let preset = params.get("preset").cloned().unwrap_or(json!("cifar10"));
            assert_eq!(h["preset"], preset, "{method}");
            // Labels over 10 classes, redrawn each epoch: about 9 in 10 change.
            let rate = h["relabel_change_rate"].as_f64().unwrap();
            assert!((rate - 0.9).abs() < 0.05, "{method}: {rate}");
        }
        let m = metrics(&lab, &out.model, &lab.class_split);
        assert!(get(&m, "acc_forget_train") < 0.5, "{method}: {m:?}");
        assert!(get(&m, "acc_remain_train") > 0.8, "{method}: {m:?}");
    }
}

#[test]
fn salun_leaves_masked_weights_untouched() {
    let _rng = rng();
    let lab = lab();
    let out = run(
        &lab,
        "salun",
        &lab.class_split,
        json!({"epochs": 1, "sparsity": 0.5}),
    )
    .unwrap();
    let same = unchanged_fraction(&lab.original, &out.model);
    // Half the weights are outside the mask and must be restored exactly despite weight decay
    // and momentum; the rest train.
    assert!((0.49..0.6).contains(&same), "unchanged fraction {same}");
    let out = run(
        &lab,
        "salun",
        &lab.class_split,
        json!({"epochs": 1, "sparsity": 0.2}),
    )
    .unwrap();
    let same = unchanged_fraction(&lab.original, &out.model);
    assert!(
        (0.79..0.85).contains(&same),
        "unchanged fraction {same} at sparsity 0.2"
    );
}

#[test]
fn ssd_dampens_only_selected_weights() {
    let _rng = rng();
    let lab = lab();
    let out = run(&lab, "ssd", &lab.class_split, json!({})).unwrap();
    let h = &out.details["hyperparameters"];
    let dampened = h["dampened_parameters"].as_f64().unwrap();
    let total = h["parameters"].as_f64().unwrap();
    let changed = (1.0 - unchanged_fraction(&lab.original, &out.model)) * total;
    assert!(dampened > 0.0);
    assert!(
        changed <= dampened + 0.5,
        "{changed} weights changed, {dampened} selected"
    );
    assert!(changed > 0.0);
    // Selected weights shrink toward zero: the L1 norm can only fall.
    assert!(l1(&out.model) < l1(&lab.original));
    assert!(
        forget_loss(&lab, &out.model, &lab.class_split)
            > forget_loss(&lab, &lab.original, &lab.class_split)
    );
}

#[test]
fn distillation_methods_push_the_forget_set_away() {
    let _rng = rng();
    let lab = lab();
    let before = forget_loss(&lab, &lab.original, &lab.class_split);
    for (method, params) in [
        ("bad_teacher", json!({"lr": 1e-3, "epochs": 2})),
        ("scrub", json!({"preset": "small", "epochs": 3})),
    ] {
        let out = run(&lab, method, &lab.class_split, params).unwrap();
        let after = forget_loss(&lab, &out.model, &lab.class_split);
        let m = metrics(&lab, &out.model, &lab.class_split);
        assert!(
            after > before + 0.5,
            "{method}: forget loss {before} -> {after}"
        );
        assert!(get(&m, "acc_remain_train") > 0.8, "{method}: {m:?}");
    }
}

#[test]
fn unsir_impairs_the_class_and_refuses_random_splits() {
    let _rng = rng();
    let lab = lab();
    let out = run(
        &lab,
        "unsir",
        &lab.class_split,
        json!({"noise_steps": 30, "impair_lr": 5e-3, "repair_lr": 1e-3}),
    )
    .unwrap();
    let m = metrics(&lab, &out.model, &lab.class_split);
    assert!(get(&m, "acc_forget_train") < 0.5, "{m:?}");
    assert!(get(&m, "acc_test_remain") > 0.8, "{m:?}");
    let err = run(&lab, "unsir", &lab.random_split, json!({}))
        .err()
        .unwrap();
    assert!(
        matches!(&err, MlError::NotApplicable(why) if why.contains("class removal")),
        "{err}"
    );
}

#[test]
fn boundary_methods_move_df_across_the_boundary() {
    let _rng = rng();
    let lab = lab();
    let before = forget_loss(&lab, &lab.original, &lab.class_split);
    for method in ["boundary_shrink", "boundary_expand"] {
        let out = run(
            &lab,
            method,
            &lab.class_split,
            json!({"lr": 0.01, "epochs": 3}),
        )
        .unwrap();
        assert_eq!(
            out.model.spec.classes, 10,
            "{method} must return a K-class model"
        );
        let after = forget_loss(&lab, &out.model, &lab.class_split);
        assert!(after > before + 0.5, "{method}: {before} -> {after}");
    }
}

#[test]
fn unrolling_adds_back_the_forget_gradient() {
    let _rng = rng();
    let lab = lab();
    let before = forget_loss(&lab, &lab.original, &lab.random_split);
    let out = run(&lab, "unrolling_sgd", &lab.random_split, json!({})).unwrap();
    let after = forget_loss(&lab, &out.model, &lab.random_split);
    assert!(after > before, "forget loss {before} -> {after}");
    // A zero scale is the identity.
    let same = run(
        &lab,
        "unrolling_sgd",
        &lab.random_split,
        json!({"scale": 0.0}),
    )
    .unwrap();
    assert_eq!(unchanged_fraction(&lab.original, &same.model), 1.0);
}

#[test]
fn l1_sparse_shrinks_weights_and_keeps_accuracy() {
    let lab = lab();
    let ft = run(&lab, "finetune", &lab.random_split, json!({"epochs": 2})).unwrap();
    let sp = run(
        &lab,
        "l1_sparse",
        &lab.random_split,
        json!({"epochs": 2, "alpha": 5e-3}),
    )
    .unwrap();
    assert!(
        l1(&sp.model) < l1(&ft.model),
        "l1 {} vs finetune {}",
        l1(&sp.model),
        l1(&ft.model)
    );
    assert!(
        get(
            &metrics(&lab, &sp.model, &lab.random_split),
            "acc_remain_train"
        ) > 0.9
    );
}

#[test]
fn ascent_methods_stop_on_the_last_finite_weights() {
    let _rng = rng();
    let lab = lab();
    for method in ["neggrad", "neggrad_plus"] {
        let out = run(
            &lab,
            method,
            &lab.class_split,
            json!({"lr": 50.0, "epochs": 3, "alpha": 0.5, "batch_size": 32})
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    if method == "neggrad" {
                        o.remove("alpha");
                    }
                    serde_json::Value::Object(o)
                })
                .unwrap(),
        )
        .unwrap_or_else(|e| panic!("{method} failed instead of stopping: {e}"));
        assert!(
            out.details["hyperparameters"]["diverged_at_epoch"].is_number(),
            "{method}: {:?}",
            out.details
        );
        for (name, t) in out.model.named_tensors() {
            assert!(
                t.isfinite().all().int64_value(&[]) == 1,
                "{method}: {name} is not finite"
            );
        }
    }
}

/// Euclidean distance between two models' trainable weights.
fn distance(a: &Model, b: &Model) -> f64 {
    a.named_tensors()
        .iter()
        .zip(b.named_tensors().iter())
        .filter(|((_, x), _)| x.requires_grad())
        .map(|((_, x), (_, y))| (x - y).square().sum(Kind::Double).double_value(&[]))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn neggrad_plus_anchor_pulls_toward_the_original_weights() {
    let _rng = rng();
    let lab = lab();
    let common =
        |anchor: f64| json!({"epochs": 2, "lr": 0.05, "anchor": anchor, "remain_fraction": 0.5});
    let free = run(&lab, "neggrad_plus", &lab.random_split, common(0.0)).unwrap();
    let anchored = run(&lab, "neggrad_plus", &lab.random_split, common(20.0)).unwrap();
    let (d_free, d_anch) = (
        distance(&free.model, &lab.original),
        distance(&anchored.model, &lab.original),
    );
    assert!(
        d_anch < 0.8 * d_free,
        "anchored run moved {d_anch}, unanchored {d_free}"
    );
    let h = &anchored.details["hyperparameters"];
    assert_eq!(h["momentum"], 0.0, "{h}");
    assert_eq!(h["weight_decay"], 0.0, "{h}");
    assert_eq!(h["batch_size"], 128, "{h}");
}

/// SCRUB and NegGrad+ run the reference's large-scale configuration on a full split unless
/// `preset: small` asks for the small-scale one, and record which.
#[test]
fn scrub_and_neggrad_plus_default_to_the_large_scale_preset() {
    let _rng = rng();
    let lab = lab();
    let h = |method: &str, params: serde_json::Value| {
        run(&lab, method, &lab.class_split, params).unwrap().details["hyperparameters"].clone()
    };
    let large = h("scrub", json!({"epochs": 0}));
    for (k, v) in [
        ("preset", json!("large")),
        ("optimizer", json!("sgd")),
        ("momentum", json!(0.9)),
        ("weight_decay", json!(5e-4)),
        ("temperature", json!(4.0)),
        ("gamma", json!(0.99)),
        ("alpha", json!(0.001)),
        ("msteps", json!(2)),
        ("batch_size", json!(256)),
        ("forget_batch_size", json!(512)),
    ] {
        assert_eq!(large[k], v, "scrub large `{k}`: {large}");
    }
    assert_eq!(large, h("scrub", json!({"preset": "large", "epochs": 0})));
    let small = h("scrub", json!({"preset": "small", "epochs": 0}));
    for (k, v) in [
        ("preset", json!("small")),
        ("optimizer", json!("adam")),
        ("weight_decay", json!(0.1)),
        ("temperature", json!(2.0)),
        ("alpha", json!(0.5)),
        ("batch_size", json!(32)),
        ("forget_batch_size", json!(64)),
    ] {
        assert_eq!(small[k], v, "scrub small `{k}`: {small}");
    }
    let large = h("neggrad_plus", json!({"epochs": 0}));
    assert_eq!(
        (&large["preset"], &large["alpha"], &large["anchor"]),
        (&json!("large"), &json!(0.9999), &json!(0.0))
    );
    assert_eq!(
        (&large["forget_batch_size"], &large["train_mode"]),
        (&json!(32), &json!(true))
    );
    let small = h("neggrad_plus", json!({"preset": "small", "epochs": 0}));
    assert_eq!(
        (
            &small["alpha"],
            &small["anchor"],
            &small["forget_batch_size"],
            &small["train_mode"]
        ),
        (&json!(0.95), &json!(0.1), &json!(64), &json!(false))
    );
    let bad = json!({"preset": "medium"});
    for m in ["scrub", "neggrad_plus"] {
        assert!(
            methods::lookup(m)
                .unwrap()
                .validate(bad.as_object().unwrap())
                .is_err()
        );
    }
}

/// SSD reads Dr class by class in class removal (the reference's retained set is built so), and
/// in the split's order in random removal; UNSIR takes the first 1,000 retained samples of each
/// class in dataset order.
#[test]
fn ssd_sorts_dr_by_class_and_unsir_takes_the_first_per_class() {
    let _rng = rng();
    let lab = lab();
    let labels = Vec::<i64>::try_from(&lab.data.train_y).unwrap();
    let none = Map::new();
    let ctx = |split| context(&lab, split, &none);
    let order = camu_torch::methods::ssd_retained_order(&ctx(&lab.class_split)).unwrap();
    let classes: Vec<i64> = order.iter().map(|&i| labels[i as usize]).collect();
    assert!(classes.windows(2).all(|w| w[0] <= w[1]), "not class-sorted");
    let mut sorted = lab.class_split.remain.clone();
    sorted.sort_unstable();
    let mut same = order.clone();
    same.sort_unstable();
    assert_eq!(same, sorted, "the same samples");
    // Batches of 64 over it are nearly single-class, unlike the split's order.
    let pure = |o: &[i64]| {
        o.chunks(64)
            .filter(|c| {
                c.iter()
                    .all(|&i| labels[i as usize] == labels[c[0] as usize])
            })
            .count()
    };
    assert!(pure(&order) > pure(&lab.class_split.remain) + 2);
    assert_eq!(
        camu_torch::methods::ssd_retained_order(&ctx(&lab.random_split)).unwrap(),
        lab.random_split.remain
    );
    let first = camu_torch::methods::unsir_retained_subset(&ctx(&lab.class_split), 20).unwrap();
    for c in 1..10 {
        let want: Vec<i64> = sorted
            .iter()
            .copied()
            .filter(|&i| labels[i as usize] == c)
            .take(20)
            .collect();
        let got: Vec<i64> = first
            .iter()
            .copied()
            .filter(|&i| labels[i as usize] == c)
            .collect();
        assert_eq!(got, want, "class {c}");
    }
}

#[test]
fn boundary_shrink_keeps_the_true_label_where_the_attack_fails() {
    let _rng = rng();
    let lab = lab();
    // With a zero bound the attack fails everywhere: each target is f_o's own prediction, the
    // true class wherever f_o is right (the old code forced every target to a wrong class).
    let out = run(
        &lab,
        "boundary_shrink",
        &lab.random_split,
        json!({"bound": 0.0, "epochs": 1}),
    )
    .unwrap();
    let kept = out.details["hyperparameters"]["targets_true_class_fraction"]
        .as_f64()
        .unwrap();
    let fa = get(
        &metrics(&lab, &lab.original, &lab.random_split),
        "acc_forget_train",
    );
    assert!(fa > 0.8, "{fa}");
    assert!(
        (kept - fa).abs() < 1e-9,
        "kept {kept}, f_o's accuracy on Df {fa}"
    );
}

#[test]
fn random_labels_are_redrawn_every_epoch() {
    let _rng = rng();
    let lab = lab();
    for method in ["random_label", "salun"] {
        let out = run(
            &lab,
            method,
            &lab.random_split,
            json!({"epochs": 3, "remain_fraction": 0.1}),
        )
        .unwrap();
        let rate = out.details["hyperparameters"]["relabel_change_rate"]
            .as_f64()
            .unwrap_or(0.0);
        // Redrawn uniformly over 10 classes: a sample keeps its previous label 1 time in 10.
        assert!((rate - 0.9).abs() < 0.05, "{method}: change rate {rate}");
    }
}

#[test]
fn unrolling_step_scales_with_the_original_recorded_epochs() {
    let _rng = rng();
    let lab = lab();
    let step = |epochs: u64| {
        let record = json!({"config": {"lr": 1e-3, "epochs": epochs, "batch_size": 32}});
        let out = run_with(&lab, "unrolling_sgd", &lab.random_split, json!({}), &record).unwrap();
        let h = &out.details["hyperparameters"];
        assert_eq!(h["epochs"], epochs);
        (
            h["step"].as_f64().unwrap(),
            distance(&out.model, &lab.original),
        )
    };
    let (s10, d10) = step(10);
    let (s20, d20) = step(20);
    assert!((s20 / s10 - 2.0).abs() < 1e-12, "{s10} {s20}");
    assert!(
        (d20 / d10 - 2.0).abs() < 1e-3,
        "weights moved {d10} and {d20}"
    );
    // Without a record, the method asks for the recipe instead of guessing one.
    let err = run_with(
        &lab,
        "unrolling_sgd",
        &lab.random_split,
        json!({}),
        &json!({}),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, MlError::MissingRecord { key } if key == "lr"),
        "{err}"
    );
}

#[test]
fn a_nan_model_evaluates_as_diverged_with_null_metrics() {
    let _rng = rng();
    let lab = lab();
    let nan = lab.original.duplicate().unwrap();
    tch::no_grad(|| {
        for (_, mut t) in nan.named_tensors() {
            let _ = t.fill_(f64::NAN);
        }
    });
    let opts = EvalOptions {
        mia: true,
        mia_samples: 100,
        batch: 512,
        seed: 0,
        mia_export: None,
        per_class: false,
        cka_samples: None,
    };
    let m = evaluate(
        &nan,
        Some(&lab.original),
        &lab.data,
        &lab.class_split,
        &opts,
    )
    .unwrap();
    assert_eq!(m["diverged"], true, "{m:?}");
    for k in [
        "acc_remain_train",
        "acc_forget_train",
        "acc_test",
        "acc_test_forget",
        "acc_test_remain",
        "mia_camu",
        "mia_loss",
        "kl_to_retrain_forget",
    ] {
        assert_eq!(m[k], Value::Null, "{k}: {m:?}");
    }
    assert_eq!(m["nonfinite_outputs"]["test"], 500, "{m:?}");
    // The original is finite and says so.
    let ok = evaluate(&lab.original, None, &lab.data, &lab.class_split, &opts).unwrap();
    assert_eq!(ok["diverged"], false);
    assert!(ok["acc_test"].is_number());
}

#[test]
fn the_divergence_guard_rejects_weights_with_non_finite_outputs() {
    let _rng = rng();
    let lab = lab();
    let model = lab.original.duplicate().unwrap();
    let probe = lab.data.train_x.narrow(0, 0, 16).to_kind(Kind::Float) / 255.0;
    let mut guard = methods::common::DivergenceGuard::new(&model, probe);
    assert!(guard.finite());
    // One SGD step of size 1e36 on -sum(w): every weight becomes about 1e36, still finite in
    // f32, but the activations overflow.
    let mut opt = methods::common::sgd(&model.vs, 1e36, 0.0, 0.0).unwrap();
    let before: Vec<Tensor> = methods::common::trainable(&model)
        .iter()
        .map(|(_, t)| t.detach().copy())
        .collect();
    let loss = methods::common::trainable(&model).iter().fold(
        Tensor::zeros([], (Kind::Float, Device::Cpu)),
        |a, (_, t)| a - t.sum(Kind::Float),
    );
    assert!(!guard.step(&mut opt, &loss), "the step must be rejected");
    for ((_, t), b) in methods::common::trainable(&model).iter().zip(&before) {
        assert!(t.equal(b), "weights must be restored");
    }
    // The same weights set by hand: finite, yet the guard sees the outputs.
    tch::no_grad(|| {
        for (_, t) in methods::common::trainable(&model) {
            let mut t = t;
            let _ = t.fill_(1e36);
        }
    });
    assert!(
        methods::common::trainable(&model)
            .iter()
            .all(|(_, t)| t.isfinite().all().int64_value(&[]) == 1)
    );
    assert!(!guard.finite());
}

#[test]
fn every_method_records_its_documented_defaults() {
    let _rng = rng();
    let lab = lab();
    for m in camu_lab::methods::METHODS {
        // No training: the run only resolves and records its settings.
        let mut params = Map::new();
        for k in ["epochs", "impair_epochs"] {
            if m.fields().iter().any(|f| f == k) {
                params.insert(k.into(), json!(0));
            }
        }
        let out = run(
            &lab,
            m.name(),
            &lab.class_split,
            Value::Object(params.clone()),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        let h = &out.details["hyperparameters"];
        let defaults = m.defaults().remove(0).1;
        let mut checked = 0;
        for (k, want) in defaults.as_object().unwrap() {
            // Unset defaults depend on the data or the split; the run records what it chose.
            if params.contains_key(k) || want.is_null() {
                assert!(
                    !h[k].is_null(),
                    "{}: `{k}` not resolved in the record",
                    m.name()
                );
                continue;
            }
            assert_eq!(&h[k], want, "{}: `{k}`", m.name());
            checked += 1;
        }
        assert!(checked >= 1, "{}: no default checked", m.name());
    }
}

/// A tiny CIFAR-family set (random 3x32x32 images), an untrained CIFAR-stem ResNet-18 and a
/// random 25% split: enough to watch the training transform, too small to learn anything.
fn cifar_lab() -> (Dataset, Model, Split) {
    tch::manual_seed(11);
    let (n_train, n_test) = (160, 16);
    let img = |n| Tensor::randint(256, [n, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    let lab = |n| Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    let data = Dataset {
        meta: Meta {
            name: "cifar-like".into(),
            family: Family::Cifar,
            classes: 10,
            channels: 3,
            height: 32,
            width: 32,
            n_train,
            n_test,
        },
        train_x: img(n_train),
        train_y: lab(n_train),
        test_x: img(n_test),
        test_y: lab(n_test),
    };
    let model = Model::new(
        ModelSpec {
            arch: Arch::Resnet18Cifar,
            classes: 10,
            channels: 3,
        },
        Device::Cpu,
    );
    let labels = Vec::<i64>::try_from(&data.train_y).unwrap();
    let split = split::make(&labels, Scenario::Random { fraction: 0.25 }, 0, 1).unwrap();
    (data, model, split)
}

#[test]
fn optml_methods_augment_cifar_batches_and_never_mnist_ones() {
    let _rng = rng();
    tch::set_num_threads(1);
    let (data, model, split) = cifar_lab();
    let none = Map::new();
    let cifar = context_with(&model, &data, &split, &none);
    let idx = cifar.forget_idx();
    assert!(cifar.augment(None), "CIFAR augments by default");
    // Two epochs see the same samples as different crops and flips; unaugmented, the same input.
    let (a, b) = (
        cifar.train_batch(&idx, None, true).x,
        cifar.train_batch(&idx, None, true).x,
    );
    assert_eq!(a.size(), [40, 3, 32, 32]);
    assert!(
        !a.equal(&b),
        "two augmented draws of one batch are identical"
    );
    assert!(
        cifar
            .train_batch(&idx, None, false)
            .x
            .equal(&cifar.batch(&idx, None).x)
    );
    assert!(!cifar.augment(Some(false)));
    // The MNIST family never augments by default, as the references.
    let lab = lab();
    assert!(!context(&lab, &lab.random_split, &none).augment(None));

    // Which methods take `augment`: the OPTML-derived ones; the others refuse it.
    for m in camu_lab::methods::METHODS {
        let with = serde_json::from_value::<Map<String, Value>>(json!({"augment": true})).unwrap();
        let optml = [
            "finetune",
            "neggrad",
            "random_label",
            "salun",
            "l1_sparse",
            "boundary_shrink",
            "boundary_expand",
        ]
        .contains(&m.name());
        assert_eq!(camu_lab::methods::augments(*m), optml, "{}", m.name());
        assert_eq!(m.validate(&with).is_ok(), optml, "{}", m.name());
    }
    let bad = serde_json::from_value::<Map<String, Value>>(json!({"augment": "yes"})).unwrap();
    assert!(methods::lookup("finetune").unwrap().validate(&bad).is_err());
}

/// A context on the given model, data and split, with `params` as parameters and record.
fn context_with<'a>(
    model: &'a Model,
    data: &'a Dataset,
    split: &'a Split,
    params: &'a Map<String, Value>,
) -> Context<'a> {
    Context {
        original: model,
        data,
        split,
        device: Device::Cpu,
        seed: 0,
        params,
        original_record: params,
    }
}

#[test]
fn boundary_shrink_recomputes_its_targets_on_each_epochs_crops() {
    let _rng = rng();
    tch::set_num_threads(1);
    let (mut data, mut model, split) = cifar_lab();
    // A few epochs so that f_o's predictions depend on the image (untrained, it predicts about
    // one class for everything, crop or not).
    let all = Tensor::arange(data.meta.n_train, (Kind::Int64, Device::Cpu));
    train(
        &mut model,
        &data,
        &all,
        &TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    // Labels are f_o's own predictions on the plain images, so with a zero bound every target is
    // the true class exactly where f_o's prediction survives the batch's crop and flip.
    data.train_y = tch::no_grad(|| {
        let x = camu_torch::models::prepare(
            &data.train_x,
            Family::Cifar,
            Arch::Resnet18Cifar,
            false,
            Device::Cpu,
        );
        model.forward(&x, false).0.argmax(1, false)
    });
    let shrink = |augment: bool| {
        let params = serde_json::from_value::<Map<String, Value>>(
            json!({"epochs": 4, "lr": 0.0, "bound": 0.0, "augment": augment}),
        )
        .unwrap();
        let ctx = context_with(&model, &data, &split, &params);
        let out = methods::lookup("boundary_shrink")
            .unwrap()
            .run(&ctx)
            .unwrap();
        let h = &out.details["hyperparameters"];
        assert_eq!(h["augment"], json!(augment));
        assert_eq!(h["lr"], json!(0.0));
        serde_json::from_value::<Vec<f64>>(h["targets_true_class_fraction_per_epoch"].clone())
            .unwrap()
    };
    // lr 0 keeps the model fixed, so only the inputs can change the targets: all true every
    // epoch without augmentation; with it, each epoch's crops change some predictions, and not
    // the same number each epoch.
    assert_eq!(shrink(false), [1.0; 4]);
    let fresh = shrink(true);
    assert_eq!(fresh.len(), 4);
    assert!(fresh.iter().all(|&k| k < 1.0), "{fresh:?}");
    assert!(fresh.iter().any(|&k| k != fresh[0]), "{fresh:?}");
}

#[test]
fn unsir_learns_its_noise_at_the_datas_resolution() {
    let _rng = rng();
    tch::set_num_threads(1);
    let (data, _, _) = cifar_lab();
    let labels = Vec::<i64>::try_from(&data.train_y).unwrap();
    let split = split::make(&labels, Scenario::Class { classes: vec![0] }, 0, 1).unwrap();
    // The ImageNet-stem ResNet takes 224x224 inputs; the noise stays 32x32, as the notebook's.
    let model = Model::new(
        ModelSpec {
            arch: Arch::Resnet18,
            classes: 10,
            channels: 3,
        },
        Device::Cpu,
    );
    let params = serde_json::from_value::<Map<String, Value>>(json!({
        "noise_batch": 2, "noise_steps": 1, "noise_per_round": 1, "noise_repeat": 1,
        "remain_per_class": 1,
    }))
    .unwrap();
    let ctx = context_with(&model, &data, &split, &params);
    let out = methods::lookup("unsir").unwrap().run(&ctx).unwrap();
    assert_eq!(
        out.details["hyperparameters"]["noise_shape"],
        json!([2, 3, 32, 32])
    );
    // Without `noise_per_round`, a round adds as many samples as the noise has channels (the
    // notebook's `range(batch[0].size(0))`): 3 here, 1 on the MNIST family.
    let mut params = params;
    params.remove("noise_per_round");
    params.insert("noise_batch".into(), json!(4));
    let ctx = context_with(&model, &data, &split, &params);
    let out = methods::lookup("unsir").unwrap().run(&ctx).unwrap();
    assert_eq!(out.details["hyperparameters"]["noise_per_round"], json!(3));
    let lab = lab();
    let out = run(
        &lab,
        "unsir",
        &lab.class_split,
        json!({"noise_batch": 4, "noise_steps": 1, "noise_repeat": 1, "remain_per_class": 1}),
    )
    .unwrap();
    assert_eq!(out.details["hyperparameters"]["noise_per_round"], json!(1));
}

/// `per_class` against a direct count: a model trained without class 0 (retrain on the class
/// split's Dr) evaluated image by image, one forward pass per image, counted per class. Scored on
/// the random split, whose Df and Dr hold every class.
#[test]
fn per_class_accuracies_match_a_direct_count_and_show_the_lost_class() {
    let _g = rng();
    let lab = lab();
    tch::manual_seed(1);
    let spec = lab.original.spec.clone();
    let mut model = Model::new(spec.clone(), Device::Cpu);
    train(
        &mut model,
        &lab.data,
        &Tensor::from_slice(&lab.class_split.remain),
        &TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let opts = EvalOptions {
        batch: 512,
        per_class: true,
        ..EvalOptions::default()
    };
    let split = &lab.random_split;
    let m = evaluate(&model, None, &lab.data, split, &opts).unwrap();
    let list = |k: &str| -> Vec<Option<f64>> { serde_json::from_value(m[k].clone()).unwrap() };

    let family = lab.data.meta.family;
    let predict = |x: &Tensor, i: i64| -> i64 {
        let xb =
            camu_torch::models::prepare(&x.narrow(0, i, 1), family, spec.arch, false, Device::Cpu);
        tch::no_grad(|| {
            model
                .forward(&xb, false)
                .0
                .argmax(1, false)
                .int64_value(&[0])
        })
    };
    let direct = |x: &Tensor, y: &Tensor, idx: &[i64]| -> Vec<Option<f64>> {
        let (mut hit, mut all) = ([0u32; 10], [0u32; 10]);
        for &i in idx {
            let c = y.int64_value(&[i]) as usize;
            all[c] += 1;
            hit[c] += u32::from(predict(x, i) == c as i64);
        }
        (0..10)
            .map(|c| (all[c] > 0).then(|| f64::from(hit[c]) / f64::from(all[c])))
            .collect()
    };
    let test_idx: Vec<i64> = (0..lab.data.meta.n_test).collect();
    let close = |a: &[Option<f64>], b: &[Option<f64>]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-12,
                (None, None) => true,
                _ => false,
            })
    };
    let (d, ours) = (
        direct(&lab.data.test_x, &lab.data.test_y, &test_idx),
        list("acc_test_per_class"),
    );
    assert!(close(&ours, &d), "test: {ours:?} vs direct {d:?}");
    let (train_x, train_y) = (&lab.data.train_x, &lab.data.train_y);
    let (d, ours) = (
        direct(train_x, train_y, &split.forget),
        list("acc_forget_per_class"),
    );
    assert!(close(&ours, &d), "forget: {ours:?} vs direct {d:?}");
    let (d, ours) = (
        direct(train_x, train_y, &split.remain),
        list("acc_remain_per_class"),
    );
    assert!(close(&ours, &d), "remain: {ours:?} vs direct {d:?}");
    // What the view is for: the class the model never saw stands out.
    let test = list("acc_test_per_class");
    let others: Vec<f64> = test[1..].iter().flatten().copied().collect();
    assert_eq!(others.len(), 9);
    let mean_others = others.iter().sum::<f64>() / 9.0;
    assert!(
        test[0].unwrap() < 0.05 && mean_others > 0.5,
        "class 0 {:?}, others {mean_others}",
        test[0]
    );
}
