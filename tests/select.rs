//! The `select` kind through the binary, with command stages standing in for evaluations: it
//! picks the known best trial, a new trial runs alone, and what uses the choice re-runs only when
//! the choice changes.

mod common;

use common::{Fixture, stages_with};

/// Trials whose metrics are a table of `lr` -> (RA, FA, TA, MIA); retrain's are fixed.
fn pipeline(lrs: &[&str]) -> String {
    format!(
        r#"stages:
  retrain_eval:
    kind: command
    command: |
      echo '{{"acc_remain_train": 0.9, "acc_forget_train": 0.0, "acc_test": 0.85, "mia_camu": 0.4}}' > ${{out}}/metrics.json
    outputs: [metrics.json]
  trial:
    kind: command
    matrix: {{lr: [{}]}}
    command: |
      case ${{lr}} in
        0.1) m='0.80, 0.30, 0.75, 0.50' ;;
        0.01) m='0.89, 0.02, 0.84, 0.41' ;;
        0.001) m='0.90, 0.40, 0.85, 0.45' ;;
        0.005) m='0.88, 0.05, 0.84, 0.42' ;;
        0.02) m='0.90, 0.00, 0.85, 0.40' ;;
      esac
      set -- $(echo "$m" | tr -d ,)
      echo "{{\"acc_remain_train\": $1, \"acc_forget_train\": $2, \"acc_test\": $3, \"mia_camu\": $4}}" > ${{out}}/metrics.json
    outputs: [metrics.json]
  pick:
    kind: select
    needs: [trial, retrain_eval]
    with: {{reference: retrain_eval, vars: [lr]}}
  final:
    kind: command
    needs: [pick]
    command: cp ${{in.pick}}/selected.json ${{out}}/used.json
    outputs: [used.json]
"#,
        lrs.join(", ")
    )
}

fn selected(f: &Fixture) -> serde_json::Value {
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key = rows
        .iter()
        .find(|r| r["stage"] == "pick")
        .and_then(|r| r["key"].as_str())
        .unwrap();
    serde_json::from_str(&f.read(&format!("cache/out/{key}/selected.json"))).unwrap()
}

#[test]
fn select_picks_the_best_trial_and_only_a_new_winner_reruns_what_uses_it() {
    let f = Fixture::new();
    f.write("p.yaml", &pipeline(&["0.1", "0.01", "0.001"]));
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stages_with(&ev, "started").len(), 6);
    let s = selected(&f);
    assert_eq!(s["trial"], "trial@lr=0.01", "{s}");
    assert_eq!(s["values"], serde_json::json!({"lr": 0.01}));

    // The report shows every trial's gap (points) by the selection's criterion, and the choice.
    let out = f.run(&["report", "p.yaml", "--out", "rep"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{md}");
    for row in [
        "| 0.1 | 15.00 |",
        "| 0.01 | **1.25** (chosen) |",
        "| 0.001 | 11.25 |",
    ] {
        assert!(md.contains(row), "{row} missing: {md}");
    }
    assert!(md.contains("chosen: lr 0.01\n"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&f.read("rep/comparison.json")).unwrap();
    assert_eq!(json["searches"][0]["chosen"], "trial@lr=0.01");
    assert_eq!(json["searches"][0]["decided"], true);
    let plots: Vec<String> = std::fs::read_dir(f.dir.path().join("rep"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("search-") && n.ends_with(".svg"))
        .collect();
    assert_eq!(plots.len(), 1, "the criterion across the trials: {plots:?}");

    // On a partial search (a trial not yet run) the report says the choice is provisional.
    f.write("p.yaml", &pipeline(&["0.1", "0.01", "0.001", "0.005"]));
    let out = f.run(&["report", "p.yaml", "--out", "rep"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("(provisional: 3 of 4 trials evaluated; `pick` has not run on them)"),
        "{md}"
    );

    // A new trial that does not win: only it and the selection run; `final` stays cached.
    f.write("p.yaml", &pipeline(&["0.1", "0.01", "0.001", "0.005"]));
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    let mut ran = stages_with(&ev, "started");
    ran.sort();
    assert_eq!(ran, ["pick", "trial@lr=0.005"]);
    assert_eq!(selected(&f)["trial"], "trial@lr=0.01");

    // A new trial that wins: the selection changes and `final` runs again.
    f.write(
        "p.yaml",
        &pipeline(&["0.1", "0.01", "0.001", "0.005", "0.02"]),
    );
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    let mut ran = stages_with(&ev, "started");
    ran.sort();
    assert_eq!(ran, ["final", "pick", "trial@lr=0.02"]);
    assert_eq!(selected(&f)["values"], serde_json::json!({"lr": 0.02}));
}

#[test]
fn tuning_on_two_seeds_scores_each_setting_by_its_mean_against_each_seeds_retrain() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        r#"stages:
  retrain_eval:
    kind: command
    matrix: {seed: [0, 1]}
    command: |
      ra=$((90 - 10 * ${seed})); ta=$((85 - 10 * ${seed}))
      echo "{\"acc_remain_train\": 0.$ra, \"acc_forget_train\": 0.0, \"acc_test\": 0.$ta, \"mia_camu\": 0.4}" > ${out}/metrics.json
    outputs: [metrics.json]
  trial:
    kind: command
    matrix: {lr: [0.1, 0.01], seed: [0, 1]}
    command: |
      case ${lr},${seed} in
        0.1,0) m='0.90, 0.00, 0.85, 0.40' ;;
        0.1,1) m='0.80, 0.00, 0.75, 0.40' ;;
        0.01,*) m='0.89, 0.01, 0.84, 0.41' ;;
      esac
      set -- $(echo "$m" | tr -d ,)
      echo "{\"acc_remain_train\": $1, \"acc_forget_train\": $2, \"acc_test\": $3, \"mia_camu\": $4}" > ${out}/metrics.json
    outputs: [metrics.json]
  pick:
    kind: select
    needs: [trial, retrain_eval]
    with: {reference: retrain_eval, vars: [lr]}
"#,
    );
    let (_, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    // lr 0.1 equals each seed's retrain (gap 0); lr 0.01 is 0.01 from seed 0's and 0.05 from
    // seed 1's. Against seed 0's retrain alone, lr 0.01 would win.
    let s = selected(&f);
    assert_eq!(s["values"], serde_json::json!({"lr": 0.1}), "{s}");
    let out = f.run(&["report", "p.yaml", "--out", "rep"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("| 0.01 | 3.00 |"), "{md}");
    assert!(md.contains("| 0.1 | **0.00** (chosen) |"), "{md}");
}

#[test]
fn select_without_a_reference_or_vars_fails_validation() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  t: {kind: command, command: 'true'}\n  pick: {kind: select, needs: [t], with: {vars: [lr]}}\n",
    );
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("reference"), "{err}");
    f.write(
        "q.yaml",
        "stages:\n  t: {kind: command, command: 'true'}\n  pick: {kind: select, needs: [t], with: {reference: t}}\n",
    );
    let out = f.run(&["run", "q.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("vars"), "{err}");
}
