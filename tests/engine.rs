//! The engine end to end, through the real binary, on command-stage pipelines.

mod common;

use common::{Fixture, stages_with};
use std::time::{Duration, Instant};

/// a -> b -> c, plus an independent d. Each execution appends its stage name to runs.log.
const CHAIN: &str = r#"
stages:
  a:
    kind: command
    command: "echo $CAMU_STAGE >> runs.log; echo A > ${out}/a.txt"
    outputs: [a.txt]
  b:
    kind: command
    needs: [a]
    with: {lr: 0.1}
    command: "echo $CAMU_STAGE >> runs.log; cat ${in.a}/a.txt > ${out}/b.txt; echo $CAMU_PARAMS >> ${out}/b.txt"
    outputs: [b.txt]
  c:
    kind: command
    needs: [b]
    inputs: [script.sh]
    command: "echo $CAMU_STAGE >> runs.log; sh script.sh ${in.b}/b.txt > ${out}/c.txt"
    outputs: [c.txt]
  d:
    kind: command
    command: "echo $CAMU_STAGE >> runs.log; echo D > ${out}/d.txt"
"#;

fn chain() -> Fixture {
    let f = Fixture::new();
    f.write("p.yaml", CHAIN);
    f.write("script.sh", "cat \"$1\"\n");
    f
}

#[test]
fn reruns_only_what_changed() {
    let f = chain();
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stages_with(&ev, "finished"), ["a", "b", "c", "d"]);
    assert_eq!(f.lines("runs.log").len(), 4);
    // Outputs flow downstream through ${in.X}.
    let c_out = std::fs::read_dir(f.path("cache/out")).unwrap().count();
    assert_eq!(c_out, 4);

    // Nothing changed: nothing runs.
    let (ev, code, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0);
    assert!(stages_with(&ev, "finished").is_empty());
    assert_eq!(stages_with(&ev, "cached"), ["a", "b", "c", "d"]);
    assert_eq!(f.lines("runs.log").len(), 4);

    // A parameter of b: b and its descendant c run, a and d stay cached.
    f.write("p.yaml", &CHAIN.replace("lr: 0.1", "lr: 0.2"));
    let (ev, _, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(stages_with(&ev, "finished"), ["b", "c"]);
    assert_eq!(stages_with(&ev, "cached"), ["a", "d"]);

    // An input file of c: only c.
    f.write("script.sh", "cat \"$1\"; echo changed\n");
    let (ev, _, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(stages_with(&ev, "finished"), ["c"]);
    assert_eq!(f.lines("runs.log").len(), 7);
}

#[test]
fn status_explains_why() {
    let f = chain();
    let out = f.run(&["status", "p.yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("never run"), "{text}");
    assert!(f.run(&["run", "p.yaml"]).status.success());

    f.write("p.yaml", &CHAIN.replace("lr: 0.1", "lr: 0.2"));
    f.write("script.sh", "cat \"$1\"; echo changed\n");
    let out = f.run(&["status", "p.yaml", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| rows.iter().find(|r| r["stage"] == name).unwrap().clone();
    assert_eq!(row("a")["state"], "cached");
    assert_eq!(row("b")["state"], "run");
    assert_eq!(
        row("b")["reasons"][0],
        "parameter with.lr changed: 0.1 -> 0.2"
    );
    let c = row("c")["reasons"].to_string();
    assert!(c.contains("upstream will run: b"), "{c}");
    assert!(c.contains("input file script.sh changed"), "{c}");

    // Deleting a record makes its outputs missing.
    f.write("p.yaml", CHAIN);
    f.write("script.sh", "cat \"$1\"\n");
    let key = row("a")["key"].as_str().unwrap().to_string();
    std::fs::remove_file(f.path(&format!("cache/records/{key}.json"))).unwrap();
    let text = String::from_utf8_lossy(&f.run(&["status", "p.yaml"]).stdout).to_string();
    assert!(text.contains("outputs missing from the cache"), "{text}");

    // Deleting one output object names that output.
    assert!(f.run(&["run", "p.yaml"]).status.success());
    let now: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key_c = now.iter().find(|r| r["stage"] == "c").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let rec: serde_json::Value =
        serde_json::from_str(&f.read(&format!("cache/records/{key_c}.json"))).unwrap();
    let hash = rec["outputs"]["c.txt"]["hash"].as_str().unwrap();
    std::fs::remove_file(f.path(&format!("cache/objects/{}/{}", &hash[..2], &hash[2..]))).unwrap();
    let text = String::from_utf8_lossy(&f.run(&["status", "p.yaml"]).stdout).to_string();
    assert!(
        text.contains("cached output missing:") && text.contains(&hash[2..]),
        "{text}"
    );
}

#[test]
fn dry_run_force_targets_and_select() {
    let f = chain();
    let out = f.run(&["run", "p.yaml", "--dry-run"]);
    assert!(out.status.success());
    assert!(!f.path("runs.log").exists(), "--dry-run executed something");

    // A target runs its ancestors only.
    let (ev, _, _) = f.run_json(&["run", "p.yaml", "b"]);
    assert_eq!(stages_with(&ev, "finished"), ["a", "b"]);
    let (ev, _, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(stages_with(&ev, "finished"), ["c", "d"]);

    // --force STAGE re-runs that stage; identical outputs keep its descendants cached.
    let (ev, _, _) = f.run_json(&["run", "p.yaml", "--force", "b"]);
    assert_eq!(stages_with(&ev, "finished"), ["b"]);
    // Bare --force re-runs everything.
    let (ev, _, _) = f.run_json(&["run", "p.yaml", "--force"]);
    assert_eq!(stages_with(&ev, "finished"), ["a", "b", "c", "d"]);

    let g = Fixture::new();
    g.write(
        "m.yaml",
        r#"
stages:
  prep:
    kind: command
    matrix: {dataset: [x, y]}
    command: "echo $CAMU_STAGE >> runs.log"
  train:
    kind: command
    needs: [prep]
    matrix: {dataset: [x, y], seed: [0, 1]}
    command: "echo $CAMU_STAGE >> runs.log"
  compare:
    kind: command
    needs: [train]
    command: "echo $CAMU_STAGE >> runs.log"
"#,
    );
    let (ev, code, err) = g.run_json(&["run", "m.yaml", "--select", "seed=0,dataset=y"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stages_with(&ev, "finished"),
        ["prep@dataset=y", "train@dataset=y,seed=0"]
    );
    let out = g.run(&["run", "m.yaml", "--select", "seed=7"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stage has seed=7"));
}

/// Every validation error: exit 2, file:line:column and a snippet, nothing executed.
#[test]
fn validation_errors_point_at_the_yaml() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown key",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran'\n    comand: x\n",
            "p.yaml:5:",
        ),
        (
            "unknown kind",
            "stages:\n  a:\n    kind: trian\n",
            "unknown kind `trian`",
        ),
        (
            "unknown need",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran'\n    needs: [nope]\n",
            "p.yaml:5:",
        ),
        (
            "duplicate name",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran'\n    matrix: {s: [1, 1]}\n",
            "duplicate stage name `a@s=1`",
        ),
        (
            "duplicate key",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran'\n  a:\n    kind: command\n    command: 'touch ran'\n",
            "p.yaml:5:",
        ),
        (
            "cycle",
            "stages:\n  a: {kind: command, command: 'touch ran', needs: [b]}\n  b: {kind: command, command: 'touch ran', needs: [a]}\n",
            "dependency cycle: a needs b needs a",
        ),
        (
            "bad interpolation",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran ${seed}'\n",
            "p.yaml:4:",
        ),
        (
            "wrong type",
            "stages:\n  a:\n    kind: command\n    command: 'touch ran'\n    resources: {cpus: many}\n",
            "p.yaml:5:",
        ),
    ];
    for (what, yaml, expect) in cases {
        let f = Fixture::new();
        f.write("p.yaml", yaml);
        let out = f.run(&["run", "p.yaml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(expect),
            "{what}: expected {expect:?} in\n{err}"
        );
        assert!(
            err.contains("p.yaml:"),
            "{what}: no file:line:col in\n{err}"
        );
        assert!(err.contains("│"), "{what}: no snippet in\n{err}");
        assert!(!f.path("ran").exists(), "{what}: something ran");
    }
}

fn timestamps(f: &Fixture, rel: &str) -> Vec<(String, f64, f64)> {
    let mut v: Vec<(String, f64, f64)> = f
        .lines(rel)
        .iter()
        .map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (
                p[0].to_string(),
                p[1].parse().unwrap(),
                p[2].parse().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

/// Largest number of intervals open at once.
fn max_overlap(spans: &[(String, f64, f64)]) -> usize {
    spans
        .iter()
        .map(|(_, s, _)| spans.iter().filter(|(_, a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn parallelism_respects_the_cpu_budget() {
    let f = Fixture::new();
    let stamp = "s=$(date +%s.%N); : ${i}; sleep 0.6; echo \"$CAMU_STAGE $s $(date +%s.%N) $OMP_NUM_THREADS\" >> spans.log";
    f.write(
        "p.yaml",
        &format!(
            "stages:\n  one:\n    kind: command\n    matrix: {{i: [1, 2, 3, 4]}}\n    command: '{stamp}'\n  wide:\n    kind: command\n    resources: {{cpus: 2}}\n    needs: [one]\n    matrix: {{i: [1, 2]}}\n    command: '{stamp}'\n"
        ),
    );
    let out = f.run(&["run", "p.yaml", "--cpus", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = timestamps(&f, "spans.log");
    assert_eq!(spans.len(), 6);
    let ones: Vec<_> = spans
        .iter()
        .filter(|s| s.0.starts_with("one"))
        .cloned()
        .collect();
    let wides: Vec<_> = spans
        .iter()
        .filter(|s| s.0.starts_with("wide"))
        .cloned()
        .collect();
    // Two one-thread stages ran side by side, never three.
    assert_eq!(max_overlap(&ones), 2, "{ones:?}");
    // A two-thread stage has the whole budget to itself.
    assert_eq!(max_overlap(&wides), 1, "{wides:?}");
    let threads: Vec<String> = f
        .lines("spans.log")
        .iter()
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(
        threads.iter().filter(|t| *t == "2").count(),
        2,
        "{threads:?}"
    );
}

#[test]
fn gpu_ids_are_assigned_exclusively() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  g:\n    kind: command\n    resources: {cpus: 1, gpus: 1}\n    matrix: {i: [1, 2, 3, 4]}\n    command: 's=$(date +%s.%N); : ${i}; sleep 0.4; echo \"$CUDA_VISIBLE_DEVICES $s $(date +%s.%N)\" >> gpu.log'\n  cpu:\n    kind: command\n    command: 'echo \"[$CUDA_VISIBLE_DEVICES]\" > cpu.log'\n",
    );
    let out = f.run(&["run", "p.yaml", "--cpus", "4", "--gpus", "fake0,fake1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = timestamps(&f, "gpu.log");
    assert_eq!(spans.len(), 4);
    for (id, ..) in &spans {
        assert!(id == "fake0" || id == "fake1", "got {id}");
    }
    // Never two stages on one device at once, and both devices used.
    for id in ["fake0", "fake1"] {
        let on: Vec<_> = spans.iter().filter(|s| s.0 == id).cloned().collect();
        assert_eq!(max_overlap(&on), 1, "{spans:?}");
        assert!(!on.is_empty());
    }
    assert_eq!(
        f.read("cpu.log").trim(),
        "[]",
        "a CPU stage must see no GPU"
    );

    f.write(
        "q.yaml",
        "stages:\n  big:\n    kind: command\n    resources: {gpus: 3}\n    command: 'true'\n",
    );
    // Asking for more GPUs than exist is refused before anything runs, dry-run included.
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["run", "q.yaml", "--gpus", "fake0,fake1"];
        args.extend_from_slice(extra);
        let out = f.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("need more GPUs than the 2 available (see --gpus): `big` (3)"),
            "{err}"
        );
    }
}

#[test]
fn fractional_gpus_share_one_id_up_to_the_whole() {
    let f = Fixture::new();
    // Eight quarter-GPU stages on two fake GPUs and eight threads: four at a time on each id.
    f.write(
        "p.yaml",
        "stages:\n  g:\n    kind: command\n    resources: {cpus: 1, gpus: 0.25}\n    matrix: {i: [1, 2, 3, 4, 5, 6, 7, 8]}\n    command: 's=$(date +%s.%N); : ${i}; sleep 0.6; echo \"$CUDA_VISIBLE_DEVICES $s $(date +%s.%N)\" >> gpu.log'\n",
    );
    let out = f.run(&["run", "p.yaml", "--cpus", "8", "--gpus", "fake0,fake1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = timestamps(&f, "gpu.log");
    assert_eq!(spans.len(), 8);
    for id in ["fake0", "fake1"] {
        let on: Vec<_> = spans.iter().filter(|s| s.0 == id).cloned().collect();
        assert_eq!(on.len(), 4, "{spans:?}");
        assert!(max_overlap(&on) <= 4, "{spans:?}");
    }
    // Fractions packed: some stages shared a device at the same time.
    assert!(max_overlap(&spans) > 2, "{spans:?}");

    // A whole GPU beside fractions: `gpus: 1` never runs while a half holds the same id.
    f.write(
        "q.yaml",
        "stages:\n  q:\n    kind: command\n    resources: {gpus: 0.5}\n    matrix: {i: [1, 2]}\n    command: 's=$(date +%s.%N); : ${i}; sleep 0.4; echo \"$CUDA_VISIBLE_DEVICES $s $(date +%s.%N)\" >> q.log'\n  w:\n    kind: command\n    resources: {gpus: 1}\n    command: 's=$(date +%s.%N); sleep 0.4; echo \"$CUDA_VISIBLE_DEVICES $s $(date +%s.%N)\" >> w.log'\n",
    );
    let out = f.run(&["run", "q.yaml", "--cpus", "4", "--gpus", "fake0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (halves, whole) = (timestamps(&f, "q.log"), timestamps(&f, "w.log"));
    assert_eq!((halves.len(), whole.len()), (2, 1));
    assert_eq!(
        max_overlap(&halves),
        2,
        "the two halves share fake0: {halves:?}"
    );
    let (_, ws, we) = &whole[0];
    for (id, s, e) in &halves {
        assert_eq!(id, "fake0");
        assert!(
            e <= ws || we <= s,
            "whole {whole:?} overlaps half {halves:?}"
        );
    }

    // Fractions above one device are refused before anything runs.
    f.write(
        "r.yaml",
        "stages:\n  r:\n    kind: command\n    resources: {gpus: 1.5}\n    command: 'true'\n",
    );
    let out = f.run(&["run", "r.yaml", "--gpus", "fake0,fake1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("whole devices"));
}

#[test]
fn failure_stops_and_keep_going_continues() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  bad:\n    kind: command\n    command: 'echo about to fail; echo details >&2; exit 3'\n  after:\n    kind: command\n    needs: [bad]\n    command: 'touch after'\n  other:\n    kind: command\n    needs: [slow]\n    command: 'touch other'\n  slow:\n    kind: command\n    command: 'sleep 0.5'\n",
    );
    let out = f.run(&["run", "p.yaml", "--cpus", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("FAILED   bad: stage process failed: exit status 1"),
        "{err}"
    );
    assert!(err.contains("details"), "log tail missing: {err}");
    assert!(err.contains("cache/logs/"), "log path missing: {err}");
    assert!(
        !f.path("other").exists(),
        "a new stage started after the failure"
    );
    assert!(!f.path("after").exists());

    let (ev, code, _) = f.run_json(&["run", "p.yaml", "--keep-going"]);
    assert_eq!(code, 1);
    assert_eq!(stages_with(&ev, "skipped"), ["after"]);
    assert!(
        f.path("other").exists(),
        "--keep-going did not run the independent branch"
    );
}

#[test]
fn corrupted_object_is_detected_and_recomputed() {
    let f = chain();
    assert!(f.run(&["run", "p.yaml"]).status.success());
    // Corrupt a's output object in place.
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key = rows[0]["key"].as_str().unwrap();
    let target = f.path(&format!("cache/out/{key}/a.txt"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&target, "tampered\n").unwrap();

    let text = String::from_utf8_lossy(&f.run(&["status", "p.yaml"]).stdout).to_string();
    assert!(text.contains("cached output corrupt"), "{text}");
    let (ev, code, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0);
    assert_eq!(stages_with(&ev, "corrupt"), ["a"]);
    assert_eq!(stages_with(&ev, "finished"), ["a"]);
    // The recomputed content is the same, so b, c, d stay cached.
    assert_eq!(stages_with(&ev, "cached"), ["b", "c", "d"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "A\n");
}

#[test]
fn gc_deletes_unreferenced_entries() {
    let f = chain();
    assert!(f.run(&["run", "p.yaml"]).status.success());
    f.write("p.yaml", &CHAIN.replace("lr: 0.1", "lr: 0.2"));
    assert!(f.run(&["run", "p.yaml"]).status.success());
    assert_eq!(
        std::fs::read_dir(f.path("cache/records")).unwrap().count(),
        6
    );

    let out = f.run(&["gc", "p.yaml", "--json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entries"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(f.path("cache/records")).unwrap().count(),
        4
    );
    let (ev, _, _) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(stages_with(&ev, "cached"), ["a", "b", "c", "d"]);
}

#[test]
fn concurrent_runs_never_compute_a_stage_twice() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    matrix: {i: [1, 2, 3]}\n    command: 'echo $CAMU_STAGE >> runs.log; sleep 0.5; echo ${i} > ${out}/v.txt'\n  t:\n    kind: command\n    needs: [s]\n    command: 'echo $CAMU_STAGE >> runs.log'\n",
    );
    let f2 = f;
    let spawn = || {
        f2.cmd(&["run", "p.yaml", "--cpus", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut x, mut y) = (spawn(), spawn());
    assert!(x.wait().unwrap().success());
    assert!(y.wait().unwrap().success());
    let mut runs = f2.lines("runs.log");
    runs.sort();
    assert_eq!(runs, ["s@i=1", "s@i=2", "s@i=3", "t"], "a stage ran twice");
    assert_eq!(
        std::fs::read_dir(f2.path("cache/records")).unwrap().count(),
        4
    );
}

fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_leaves_no_partial_entry_and_resume_redoes_only_unfinished() {
    let f = Fixture::new();
    // `slow` writes half its output, then sleeps until the test kills the run.
    f.write(
        "p.yaml",
        "stages:\n  fast:\n    kind: command\n    command: 'echo $CAMU_STAGE >> runs.log; echo x > ${out}/x'\n  slow:\n    kind: command\n    needs: [fast]\n    command: 'echo $CAMU_STAGE >> runs.log; echo partial > ${out}/y; echo $$ > slow.pid; sleep $(cat delay)'\n",
    );
    f.write("delay", "30");
    let mut child = f
        .cmd(&["run", "p.yaml"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("slow to start", || {
        f.path("slow.pid").exists() && !f.read("slow.pid").trim().is_empty()
    });
    let slow_pid: i32 = f.read("slow.pid").trim().parse().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The stage's processes die with the run.
    wait_for("the stage process to die", || !pid_alive(slow_pid));
    assert_eq!(
        std::fs::read_dir(f.path("cache/records")).unwrap().count(),
        1,
        "a partial record was left"
    );
    assert_eq!(
        std::fs::read_dir(f.path("cache/out")).unwrap().count(),
        1,
        "a partial output was published"
    );

    f.write("delay", "0");
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stages_with(&ev, "cached"), ["fast"]);
    assert_eq!(stages_with(&ev, "finished"), ["slow"]);
    // The staging directory of the killed attempt was cleaned up.
    assert_eq!(std::fs::read_dir(f.path("cache/tmp")).unwrap().count(), 0);
}

#[test]
fn interrupt_stops_children_and_exits_130() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  slow:\n    kind: command\n    command: 'echo $$ > slow.pid; sleep 30'\n",
    );
    let mut child = f
        .cmd(&["run", "p.yaml"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("slow to start", || !f.read("slow.pid").trim().is_empty());
    let slow_pid: i32 = f.read("slow.pid").trim().parse().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(status.code(), Some(130));
    wait_for("the stage to stop", || !pid_alive(slow_pid));
    assert_eq!(
        std::fs::read_dir(f.path("cache/records")).unwrap().count(),
        0
    );
}

#[test]
fn a_flaky_stage_is_retried_locally() {
    common::flaky_stage_succeeds_only_with_enough_retries(&[]);
}

#[test]
fn retries_and_limits_come_from_the_defaults_where_a_stage_leaves_them_unset() {
    let f = Fixture::new();
    let text = common::FLAKY
        .replace(
            "stages:",
            "defaults:\n  resources: {retries: 2, time: 1h}\nstages:",
        )
        .replace("resources: {retries: RETRIES}", "resources: {cpus: 1}");
    f.write("p.yaml", &text);
    let (_, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.read("count").trim(), "3");
}

#[test]
fn a_stage_past_its_time_limit_is_killed_with_its_process_group() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  slow:\n    kind: command\n    resources: {time: 2s}\n    command: 'sleep 60 & echo $! > sleeper; wait'\n",
    );
    let started = std::time::Instant::now();
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("time limit 2s exceeded"), "{err}");
    // TERM reaches the whole group at once: well before the sleep's 60 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Gone, or a zombie where nobody reaps orphans (PID 1 of a container); the signal may take
    // a moment to land after the stage's shell is gone.
    let pid = f.read("sleeper").trim().to_string();
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let s = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .map(String::from);
        (s, stat)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !matches!(state().0.as_deref(), None | Some("Z")) && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (s, stat) = state();
    assert!(
        matches!(s.as_deref(), None | Some("Z")),
        "sleep {pid} survived: {stat}"
    );
}

#[test]
fn malformed_limits_are_refused_with_the_stage_named() {
    let f = Fixture::new();
    for (limits, want) in [
        ("{time: 90}", "a number needs a unit"),
        ("{time: 5x}", "expected a duration"),
        ("{time: '12'}", "a number needs a unit"),
        ("{time: 0s}", "at least 1s"),
        ("{time: '1:75:00'}", "expected a duration"),
        ("{mem: 16Q}", "expected a size"),
        ("{retries: -1}", "retries"),
        ("{retry: 2}", "unknown field `retry`"),
    ] {
        f.write(
            "p.yaml",
            &format!(
                "stages:\n  s:\n    kind: command\n    resources: {limits}\n    command: 'true'\n"
            ),
        );
        let out = f.run(&["status", "p.yaml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{limits}: {err}");
        assert!(err.contains(want), "{limits}: {err}");
    }
}
