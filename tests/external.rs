//! The external-method example end to end: pipelines/external.yaml runs
//! pipelines/methods/suppress_logits.py as a command stage; its checkpoint is evaluated and
//! compared like a built-in method.

mod common;

use common::{Fixture, stages_with};

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn external_python_method_is_evaluated_and_compared() {
    if !python_available() {
        eprintln!("SKIPPED: python3 is not available; the external-method example needs it");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let f = Fixture::new();
    f.write(
        "external.yaml",
        &std::fs::read_to_string(format!("{root}/pipelines/external.yaml")).unwrap(),
    );
    f.write(
        "methods/suppress_logits.py",
        &std::fs::read_to_string(format!("{root}/pipelines/methods/suppress_logits.py")).unwrap(),
    );
    let (ev, code, err) = f.run_json(&["run", "external.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(stages_with(&ev, "finished").contains(&"suppress_logits".to_string()));

    let out = f.run(&["report", "external.yaml", "--json", "--out", "rep"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let methods = v["comparison"]["groups"][0]["methods"].as_array().unwrap();
    let ext = methods
        .iter()
        .find(|m| m["method"] == "suppress_logits")
        .expect("external method compared");
    // Suppressing the forgotten class's logit: no forgotten sample is predicted correctly, and the
    // other classes are untouched.
    assert_eq!(ext["metrics"]["acc_forget_train"]["mean"], 0.0);
    let retrain = methods.iter().find(|m| m["method"] == "retrain").unwrap();
    assert!(ext["metrics"]["acc_test_remain"]["mean"].as_f64().unwrap() > 0.9);
    assert!(
        retrain["metrics"]["acc_test_remain"]["mean"]
            .as_f64()
            .unwrap()
            > 0.9
    );
    assert!(f.path("rep/comparison.md").exists());
    // The compare stage wrote the same tables into the cache.
    assert!(stages_with(&ev, "finished").contains(&"compare".to_string()));

    // Editing the script re-runs it and what depends on it, nothing else.
    let script = f.read("methods/suppress_logits.py");
    f.write(
        "methods/suppress_logits.py",
        &format!("{script}\n# edited\n"),
    );
    let (ev, code, _) = f.run_json(&["run", "external.yaml"]);
    assert_eq!(code, 0);
    assert_eq!(
        stages_with(&ev, "finished"),
        [
            "compare",
            "evaluate@model=suppress_logits",
            "suppress_logits"
        ]
    );
}
