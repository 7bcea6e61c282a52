//! Hostile input and hostile stages, driven through the real binary: files that once panicked,
//! stages that try to reach outside the cache, a run killed with SIGKILL, a status beside a run.

mod common;

use common::{Fixture, stages_with};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

#[test]
fn empty_and_comment_only_files_are_errors_not_panics() {
    let f = Fixture::new();
    for (name, text) in [
        ("empty.yaml", ""),
        ("blank.yaml", "  \n\n \t\n"),
        ("comment.yaml", "# nothing here\n"),
    ] {
        f.write(name, text);
        for cmd in ["status", "run", "report"] {
            let out = f.run(&[cmd, name]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {name}: {err}");
            assert!(
                err.contains(name) && !err.contains("panicked"),
                "{cmd} {name}: {err}"
            );
        }
        let (ev, code, _) = f.run_json(&["status", name]);
        assert_eq!(code, 2);
        assert!(
            ev.iter().any(|e| e["event"] == "error"),
            "{name}: no error event"
        );
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_without_being_parsed() {
    let f = Fixture::new();
    // 5 MiB of valid stages: over the 4 MiB limit.
    let mut text = String::from("stages:\n");
    let mut i = 0;
    while text.len() < 5 << 20 {
        text.push_str(&format!("  s{i}: {{kind: command, command: 'true'}}\n"));
        i += 1;
    }
    f.write("big.yaml", &text);
    let out = f.run(&["status", "big.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("big.yaml") && err.contains("larger than 4 MiB"),
        "{err}"
    );
}

/// Warnings on a stderr that is not a terminal carry no colour codes.
#[test]
fn warnings_written_to_a_file_have_no_colour_codes() {
    let f = Fixture::new();
    f.write("p.yaml", "stages:\n  s: {kind: command, command: 'true'}\n");
    assert!(f.run(&["run", "p.yaml"]).status.success());
    for record in std::fs::read_dir(f.path("cache/records")).unwrap() {
        std::fs::write(record.unwrap().path(), "{not json").unwrap();
    }
    let out = f
        .cmd(&["status", "p.yaml"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unreadable cache record"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in {err:?}");
}

#[test]
fn oversized_matrices_and_empty_commands_are_refused_before_anything_runs() {
    let f = Fixture::new();
    let ten = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
    f.write(
        "big.yaml",
        &format!(
            "stages:\n  s:\n    kind: command\n    command: 'true'\n    matrix: {{a: {ten}, b: {ten}, c: {ten}, d: {ten}, e: {ten}, f: {ten}}}\n"
        ),
    );
    let started = Instant::now();
    let out = f.run(&["status", "big.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("1000000 combinations; at most 10000"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(out.stdout.len() + out.stderr.len() < 4096);

    f.write(
        "e.yaml",
        "stages:\n  s:\n    kind: command\n    command: ''\n",
    );
    let out = f.run(&["run", "e.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`command` is empty"));
    assert!(
        !f.path("cache/records").exists()
            || std::fs::read_dir(f.path("cache/records")).unwrap().count() == 0
    );
}

#[test]
fn shell_commands_run_in_strict_mode() {
    let f = Fixture::new();
    // The first command fails: the stage fails, and nothing after it runs or is cached.
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    command: 'false; echo finished > ${out}/o.txt'\n  p:\n    kind: command\n    command: 'false | cat > ${out}/o.txt'\n  u:\n    kind: command\n    command: 'echo $NOT_SET_ANYWHERE > ${out}/o.txt'\n",
    );
    let (ev, code, _) = f.run_json(&["run", "p.yaml", "--keep-going"]);
    assert_eq!(code, 1);
    assert_eq!(stages_with(&ev, "failed"), ["p", "s", "u"]);
}

#[test]
fn status_reads_only() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    command: 'echo hi > ${out}/o.txt'\n",
    );
    assert!(f.run(&["run", "p.yaml"]).status.success());
    let view = std::fs::read_dir(f.path("cache/out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("o.txt");
    std::fs::remove_file(&view).unwrap();
    let out = f.run(&["status", "p.yaml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cached"));
    assert!(!view.exists(), "status re-created a view file");
    // A run repairs it from the object.
    assert!(f.run(&["run", "p.yaml"]).status.success());
    assert_eq!(std::fs::read_to_string(&view).unwrap(), "hi\n");
}

/// Mode, size, link count and content of every file under `dir`.
fn snapshot(dir: &std::path::Path) -> Vec<(String, u32, u64, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p.display().to_string(), m.mode(), m.nlink(), text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn stages_cannot_reach_outside_the_cache() {
    let f = Fixture::new();
    f.write("outside/data.txt", "precious\n");
    f.write("outside/other.txt", "also precious\n");
    let outside = f.path("outside");
    let before = snapshot(&outside);
    let o = outside.display();
    f.write(
        "p.yaml",
        &format!(
            "stages:\n  swap:\n    kind: command\n    command: 'rmdir ${{out}} && ln -s {o} ${{out}}'\n  link:\n    kind: command\n    command: 'ln -s {o}/data.txt ${{out}}/data.txt'\n  declared:\n    kind: command\n    command: 'ln -s {o}/data.txt ${{out}}/d.txt'\n    outputs: [d.txt]\n  hard:\n    kind: command\n    command: 'ln {o}/other.txt ${{out}}/h.txt'\n"
        ),
    );
    let (ev, code, err) = f.run_json(&["run", "p.yaml", "--keep-going"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(stages_with(&ev, "failed"), ["declared", "link", "swap"]);
    // The hard link was collected as a copy: the outside file keeps its mode and content.
    assert_eq!(stages_with(&ev, "finished"), ["hard"]);
    let after = snapshot(&outside);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (&b.0, b.1, &b.3),
            (&a.0, a.1, &a.3),
            "an outside file changed"
        );
    }
    assert_eq!(before.len(), after.len());
    // A status afterwards writes nothing outside either.
    f.run(&["status", "p.yaml"]);
    assert_eq!(snapshot(&outside).len(), before.len());
}

fn alive(pid: i32) -> bool {
    // A zombie has been killed already; /proc says so in its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn killing_camu_pipe_takes_a_stage_grandchild_down() {
    let f = Fixture::new();
    f.write("duration", "30");
    // sh -> sleep: the sleep is a grandchild of the stage process.
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    command: 'echo run >> runs.log; sleep $(cat duration) & echo $! > grandchild; wait; echo done > ${out}/o.txt'\n",
    );
    let mut child = f.cmd(&["run", "p.yaml"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.read("grandchild").trim().is_empty() {
        assert!(Instant::now() < deadline, "the stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let grandchild: i32 = f.read("grandchild").trim().parse().unwrap();
    assert!(alive(grandchild));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(grandchild) {
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} outlived camu-pipe"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The resumed run executes the stage once.
    f.write("duration", "0");
    let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stages_with(&ev, "finished"), ["s"]);
    assert_eq!(f.lines("runs.log").len(), 2);
}

#[test]
fn gc_beside_a_run_never_deletes_its_results() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    matrix: {i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n    command: 'sleep 0.05; echo ${i} > ${out}/o.txt'\n  b:\n    kind: command\n    needs: [a]\n    matrix: {i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n    command: 'sleep 0.05; cat ${in.a}/o.txt > ${out}/o.txt'\n",
    );
    for trial in 0..6 {
        f.write(
            "p.yaml",
            &f.read("p.yaml").replace(&format!("trial{trial}"), ""),
        );
        let text = f
            .read("p.yaml")
            .replace("sleep 0.05;", &format!("sleep 0.05; : trial{trial};"));
        f.write("p.yaml", &text);
        let mut run = f
            .cmd(&["run", "p.yaml"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut gcs = 0;
        while run.try_wait().unwrap().is_none() {
            assert!(f.run(&["gc", "p.yaml"]).status.success());
            gcs += 1;
        }
        assert!(run.wait().unwrap().success());
        assert!(gcs > 0);
        let (ev, code, err) = f.run_json(&["run", "p.yaml"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            stages_with(&ev, "finished").is_empty(),
            "trial {trial}: gc deleted results: {:?}",
            stages_with(&ev, "finished")
        );
    }
}

#[test]
fn gc_keeps_what_other_pipelines_sharing_the_cache_reference() {
    let f = Fixture::new();
    f.write(
        "a.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'echo a > ${out}/o.txt'\n",
    );
    f.write(
        "b.yaml",
        "stages:\n  b:\n    kind: command\n    command: 'echo b > ${out}/o.txt'\n",
    );
    assert!(f.run(&["run", "a.yaml"]).status.success());
    assert!(f.run(&["run", "b.yaml"]).status.success());
    let out = f.run(&["gc", "a.yaml"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 other pipeline(s)"));
    assert!(String::from_utf8_lossy(&f.run(&["status", "b.yaml"]).stdout).contains("1 cached"));
    assert!(f.run(&["gc", "a.yaml", "--only"]).status.success());
    assert!(String::from_utf8_lossy(&f.run(&["status", "b.yaml"]).stdout).contains("0 cached"));
    assert!(String::from_utf8_lossy(&f.run(&["status", "a.yaml"]).stdout).contains("1 cached"));
}

#[test]
fn bad_placeholders_and_resources_fail_validation_before_anything_runs() {
    let f = Fixture::new();
    for (name, text, want) in [
        (
            "ghost.yaml",
            "stages:\n  a:\n    kind: command\n    command: 'echo a > ${out}/o.txt'\n  b:\n    kind: command\n    needs: [a]\n    command: 'cat ${in.ghost}/o.txt > ${out}/o.txt'\n",
            "`${in.ghost}`: `ghost` is not among its needs",
        ),
        (
            "env.yaml",
            "stages:\n  a:\n    kind: command\n    command: 'true'\n    env: {X: '${in.a}'}\n",
            "`${in.a}`: `a` is not among its needs",
        ),
        (
            "cpus.yaml",
            "stages:\n  a:\n    kind: command\n    command: 'true'\n    resources: {cpus: 0}\n",
            "`resources.cpus` must be at least 1",
        ),
    ] {
        f.write(name, text);
        let out = f.run(&["run", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}:")),
            "{name}: no file:line:col in {err}"
        );
    }
    assert!(
        !f.path("cache/records").exists()
            || std::fs::read_dir(f.path("cache/records")).unwrap().count() == 0
    );
}

#[test]
fn a_cache_that_cannot_store_results_exits_3() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    command: 'echo hi > ${out}/o.txt'\n",
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&f.run(&["status", "p.yaml", "--json"]).stdout).unwrap();
    let key = rows[0]["key"].as_str().unwrap().to_string();
    // The stage's log cannot be written (a directory where the file goes), even for root.
    std::fs::create_dir_all(f.path(&format!("cache/logs/{key}.log"))).unwrap();
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("{key}.log")), "{err}");
}

/// Every file under tests/fixtures/bad/ is a malformed pipeline: each must be refused with exit
/// code 2, a message that names the file (with line and column where there is a span), no panic,
/// a short output, and nothing written to the cache.
#[test]
fn the_corpus_of_malformed_pipelines_is_refused_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "{} files", files.len());
    let f = Fixture::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let out = f.run(&["run", file.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {text}");
        assert!(
            text.contains(&name),
            "{name}: the message does not name the file: {text}"
        );
        assert!(!text.contains("panicked"), "{name}: {text}");
        assert!(text.len() < 4096, "{name}: {} bytes of output", text.len());
        // `NAME:LINE:COLUMN:` somewhere in the message.
        let positioned = text.match_indices(&format!("{name}:")).any(|(i, m)| {
            let mut rest = text[i + m.len()..].split(':');
            let num = |p: Option<&str>| {
                p.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            };
            num(rest.next()) && num(rest.next())
        });
        // Problems without a span in the file name the file and the stage (or the whole file).
        let spanless = [
            "missing-input-file.yaml",
            "stages-empty.yaml",
            "not-utf8.yaml",
        ];
        assert!(
            positioned || spanless.contains(&name.as_str()),
            "{name}: no file:line:column in {text}"
        );
        let records = std::fs::read_dir(f.path("cache/records")).map_or(0, |d| d.count());
        assert_eq!(records, 0, "{name}: something was cached");
    }
}

#[test]
fn env_cannot_override_the_schedulers_variables_and_must_be_well_formed() {
    let f = Fixture::new();
    let cases = [
        (
            "CUDA_VISIBLE_DEVICES: '0,1,2,3'",
            "`CUDA_VISIBLE_DEVICES` is set by camu-pipe",
        ),
        (
            "OMP_NUM_THREADS: '64'",
            "`OMP_NUM_THREADS` is set by camu-pipe",
        ),
        ("CAMU_THREADS: '64'", "`CAMU_THREADS` is set by camu-pipe"),
        ("CAMU_OUT: /tmp", "`CAMU_OUT` is set by camu-pipe"),
        ("'A=B': x", "`A=B` is not a valid environment variable name"),
        ("'': x", "is not a valid environment variable name"),
        ("'1X': x", "`1X` is not a valid"),
        ("'has space': x", "`has space` is not a valid"),
        (
            "X: \"a\\0b\"",
            "`env.X`: the value contains a NUL character",
        ),
    ];
    for (i, (env, want)) in cases.iter().enumerate() {
        let name = format!("env{i}.yaml");
        f.write(
            &name,
            &format!(
                "stages:\n  a:\n    kind: command\n    command: 'env > ${{out}}/env.txt'\n    outputs: [env.txt]\n    env: {{{env}}}\n"
            ),
        );
        for cmd in ["status", "run"] {
            let out = f.run(&[cmd, &name]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {env}: {err}");
            assert!(err.contains(want), "{env}: {err}");
            assert!(
                err.contains(&format!("{name}:6:")),
                "{env}: no position in {err}"
            );
        }
    }
    // An ordinary variable still reaches the stage, and the scheduler's own stay as granted.
    f.write(
        "ok.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'env > ${out}/env.txt'\n    outputs: [env.txt]\n    env: {MY_SETTING: '7'}\n",
    );
    let out = f.run(&["run", "ok.yaml", "--gpus", "0,1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&f.run(&["path", "ok.yaml", "a"]).stdout)
        .trim()
        .to_string();
    let env = std::fs::read_to_string(std::path::Path::new(&path).join("env.txt")).unwrap();
    assert!(env.lines().any(|l| l == "MY_SETTING=7"), "{env}");
    assert!(env.lines().any(|l| l == "CUDA_VISIBLE_DEVICES="), "{env}");
}

#[test]
fn gpu_ids_are_refused_when_duplicated_or_malformed() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'true'\n",
    );
    for (gpus, want) in [
        ("0,0", "GPU id `0` is listed twice"),
        ("0 1", "GPU id `0 1` is malformed"),
    ] {
        let out = f.run(&["run", "p.yaml", "--gpus", gpus]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{gpus}: {err}");
        assert!(err.contains(want), "{gpus}: {err}");
    }
    let out = f
        .cmd(&["run", "p.yaml"])
        .env("CUDA_VISIBLE_DEVICES", "1,1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("GPU id `1` is listed twice"), "{err}");
    assert!(
        !f.path("cache/records").exists()
            || std::fs::read_dir(f.path("cache/records")).unwrap().count() == 0
    );
}

#[test]
fn report_survives_extreme_metrics_and_labels_with_control_characters() {
    let f = Fixture::new();
    // Two "evaluations" written by command stages, one with absurd values and a method name
    // with a newline and a pipe, then a compare stage over both.
    let good = r#"{"method": "ok", "dataset": "d", "scenario": {"scenario": "random", "fraction": 0.1}, "seed": 0, "acc_test": 0.9, "acc_remain_train": 0.95, "acc_forget_train": 0.9, "unlearn_time_s": 2.0, "relearn_curve": [2.08, 0.6, 0.3]}"#;
    let bad = r#"{"method": "bad\nname|x", "dataset": "d", "scenario": {"scenario": "random", "fraction": 0.1}, "seed": 0, "acc_test": 1e308, "acc_remain_train": 0.5, "acc_forget_train": -3, "unlearn_time_s": 1e308, "kl_to_retrain_test": 1e308, "relearn_curve": [0.1, 1e308]}"#;
    f.write("good.json", good);
    f.write("bad.json", bad);
    f.write(
        "p.yaml",
        "stages:\n  good:\n    kind: command\n    inputs: [good.json]\n    command: 'cp good.json ${out}/metrics.json'\n    outputs: [metrics.json]\n  bad:\n    kind: command\n    inputs: [bad.json]\n    command: 'cp bad.json ${out}/metrics.json'\n    outputs: [metrics.json]\n  compare:\n    kind: compare\n    needs: [good, bad]\n",
    );
    let mut child = f.cmd(&["run", "p.yaml"]).spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("compare did not finish in 120 s on extreme values");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let dir = String::from_utf8_lossy(&f.run(&["path", "p.yaml", "compare"]).stdout)
        .trim()
        .to_string();
    let md = std::fs::read_to_string(std::path::Path::new(&dir).join("comparison.md")).unwrap();
    assert!(md.contains("badnamex"), "{md}");
    assert!(!md.contains("bad\nname"), "{md}");
    // Six problems, all in the bad row: a loss curve above 1 is a loss curve, not a problem.
    assert!(md.contains("left out as invalid (6)"), "{md}");
    assert!(md.contains("`acc_test` = 1e+308 is out of range"), "{md}");
    assert!(
        md.contains("`acc_forget_train` = -3 is out of range"),
        "{md}"
    );
    assert!(!md.contains("| inf") && !md.contains("NaN"), "{md}");
}

#[test]
fn a_pipeline_named_dots_yaml_reports_inside_reports() {
    let f = Fixture::new();
    f.write(
        "...yaml",
        "stages:\n  a:\n    kind: command\n    command: 'true'\n",
    );
    let out = f.run(&["report", "...yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.path("reports/report").is_dir());
    assert!(!f.path("comparison.md").exists());
}

/// Two pipelines on one cache: x (one stage) has run; y is the one being collected.
fn two_pipelines() -> Fixture {
    let f = Fixture::new();
    f.write(
        "x/x.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'echo a > ${out}/o.txt'\n",
    );
    f.write(
        "y.yaml",
        "stages:\n  b:\n    kind: command\n    command: 'echo b > ${out}/o.txt'\n",
    );
    assert!(f.run(&["run", "x/x.yaml"]).status.success());
    assert!(f.run(&["run", "y.yaml"]).status.success());
    f
}

fn cached(f: &Fixture, pipeline: &str) -> String {
    let out = String::from_utf8_lossy(&f.run(&["status", pipeline]).stdout).to_string();
    out.lines().last().unwrap_or("").to_string()
}

#[test]
fn gc_refuses_when_another_pipelines_lock_file_is_unreadable_or_missing() {
    let f = two_pipelines();
    // A garbled lock file: gc of y must not read it as "x needs nothing".
    let lock = f.path("x/x.lock.json");
    let good = std::fs::read(&lock).unwrap();
    std::fs::write(&lock, b"{ garbled").unwrap();
    let out = f.run(&["gc", "y.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("x.lock.json is unreadable") && err.contains("--forget"),
        "{err}"
    );
    std::fs::write(&lock, &good).unwrap();
    assert!(cached(&f, "x/x.yaml").contains("1 cached"));
    // x's pipeline file moved away for a moment: its lock file still says what it needs.
    std::fs::rename(f.path("x/x.yaml"), f.path("x.yaml.away")).unwrap();
    let out = f.run(&["gc", "y.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(f.path("x.yaml.away"), f.path("x/x.yaml")).unwrap();
    assert!(cached(&f, "x/x.yaml").contains("1 cached"));
    // No lock file at all: refused, until x is forgotten explicitly.
    std::fs::remove_file(&lock).unwrap();
    let out = f.run(&["gc", "y.yaml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lock file"));
    assert!(cached(&f, "x/x.yaml").contains("1 cached"));
    let out = f.run(&["gc", "y.yaml", "--forget", "x/x.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cached(&f, "x/x.yaml").contains("0 cached"));
    assert!(cached(&f, "y.yaml").contains("1 cached"));
}

#[test]
fn a_lock_file_that_cannot_be_written_fails_the_run() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'echo a > ${out}/o.txt'\n",
    );
    // A non-empty directory where the lock file goes: no rename can replace it, even as root
    // (which a read-only folder would not stop).
    f.write("p.lock.json/keep", "x");
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot write lock file") && err.contains("p.lock.json"),
        "{err}"
    );
}

#[test]
fn gc_only_beside_a_live_run_keeps_what_that_run_wrote() {
    let f = Fixture::new();
    f.write(
        "y.yaml",
        "stages:\n  b:\n    kind: command\n    command: 'echo b > ${out}/o.txt'\n",
    );
    // Six quick stages commit while a seventh keeps the run alive; gc --only of another
    // pipeline runs over and over meanwhile.
    f.write(
        "x.yaml",
        "stages:\n  a:\n    kind: command\n    matrix: {i: [1, 2, 3, 4, 5, 6]}\n    command: 'echo ${i} > ${out}/o.txt'\n  z:\n    kind: command\n    command: 'sleep 2; echo z > ${out}/o.txt'\n",
    );
    let mut run = f
        .cmd(&["run", "x.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut gcs = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        assert!(f.run(&["gc", "y.yaml", "--only"]).status.success());
        gcs += 1;
    }
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended before gc stopped"
    );
    assert!(run.wait().unwrap().success());
    assert!(gcs > 1);
    let (ev, code, err) = f.run_json(&["run", "x.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stages_with(&ev, "finished").is_empty(),
        "gc deleted results of a live run"
    );
}

#[test]
fn a_stage_that_writes_into_its_input_never_gets_tampered_data_cached() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'echo good > ${out}/x'\n  tamper:\n    kind: command\n    needs: [a]\n    command: 'chmod u+w ${in.a}/x; echo BAD >> ${in.a}/x; echo done > ${out}/t'\n  reader:\n    kind: command\n    needs: [a]\n    command: 'sleep 1; cat ${in.a}/x > ${out}/y'\n  after:\n    kind: command\n    needs: [reader]\n    command: 'cat ${in.reader}/y > ${out}/z'\n",
    );
    let out = f.run(&["run", "p.yaml", "--keep-going"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("input `a` changed while the stage ran"),
        "{err}"
    );
    // Whatever got cached holds the good data only, in this run and the next.
    for _ in 0..2 {
        for (stage, file) in [("reader", "y"), ("after", "z")] {
            let o = f.run(&["path", "p.yaml", stage]);
            if o.status.success() {
                let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let text = std::fs::read_to_string(std::path::Path::new(&dir).join(file)).unwrap();
                assert_eq!(text, "good\n", "{stage}");
            }
        }
        let _ = f.run(&["run", "p.yaml", "--keep-going"]);
    }
    // Without the tampering stage, everything runs and is cached with the good data.
    let text = f.read("p.yaml");
    let start = text.find("  tamper:").unwrap();
    let end = text.find("  reader:").unwrap();
    f.write("p.yaml", &format!("{}{}", &text[..start], &text[end..]));
    let out = f.run(&["run", "p.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8_lossy(&f.run(&["path", "p.yaml", "after"]).stdout)
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(&dir).join("z")).unwrap(),
        "good\n"
    );
}

#[test]
fn a_background_writer_left_by_a_stage_is_killed_before_its_outputs_are_recorded() {
    let f = Fixture::new();
    for (name, spawn) in [
        (
            "disown",
            "(exec 3>>${out}/x; sleep 1.5; echo late >&3) & disown",
        ),
        (
            "setsid",
            "setsid sh -c \"exec 3>>$CAMU_OUT/x; sleep 1.5; echo late >&3\" > /dev/null 2>&1 &",
        ),
    ] {
        f.write(
            &format!("{name}.yaml"),
            &format!(
                "stages:\n  w:\n    kind: command\n    command: 'echo ok > ${{out}}/x; {}'\n  d:\n    kind: command\n    needs: [w]\n    command: 'sleep 2.5; cat ${{in.w}}/x > ${{out}}/y'\n",
                spawn.replace('\'', "''")
            ),
        );
        let yaml = format!("{name}.yaml");
        let out = f.run(&["run", &yaml]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = String::from_utf8_lossy(&f.run(&["path", &yaml, "d"]).stdout)
            .trim()
            .to_string();
        let y = std::fs::read_to_string(std::path::Path::new(&dir).join("y")).unwrap();
        assert_eq!(y, "ok\n", "{name}: the downstream stage saw a late write");
        std::thread::sleep(Duration::from_millis(1500));
        let status = String::from_utf8_lossy(&f.run(&["status", &yaml]).stdout).to_string();
        assert!(status.contains("2 cached"), "{name}: {status}");
    }
}

#[test]
fn matrix_values_are_data_and_never_interpolated_again() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    matrix: {v: ['${out}/../../../ESCAPE', '${nope}']}\n    command: 'printf %s ''${v}'' > ${out}/o.txt'\n",
    );
    let out = f.run(&["run", "p.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (stage, want) in [
        ("a@v=${out}/../../../ESCAPE", "${out}/../../../ESCAPE"),
        ("a@v=${nope}", "${nope}"),
    ] {
        let dir = String::from_utf8_lossy(&f.run(&["path", "p.yaml", stage]).stdout)
            .trim()
            .to_string();
        let got = std::fs::read_to_string(std::path::Path::new(&dir).join("o.txt")).unwrap();
        assert_eq!(got, want);
    }
    assert!(!f.path("ESCAPE").exists() && !f.path("cache/ESCAPE").exists());
}

/// A small search: split, original, trials of finetune's lr and their evaluations, retrain's
/// evaluation, a select and a final stage using its choice; `{..}` slots take the variant.
fn search_pipeline(validation: &str, trial_on: &str, reference_on: &str, vars: &str) -> String {
    format!(
        "stages:
  data:
    kind: download
    with: {{dataset: synthetic}}
  split:
    kind: split
    needs: [data]
    with: {{scenario: random, fraction: 0.1{validation}}}
  original:
    kind: train
    needs: [data]
  retrain:
    kind: train
    needs: [data, split]
    with: {{on: remain}}
  trial:
    kind: unlearn
    needs: [data, split, original]
    matrix: {{lr: [0.01, 0.1]}}
    with: {{method: finetune, lr: '${{lr}}'}}
  trial_val:
    kind: evaluate
    needs: [data, split, trial, retrain]
    matrix: {{lr: [0.01, 0.1]}}
    with: {{model: trial, reference: retrain{trial_on}}}
  retrain_val:
    kind: evaluate
    needs: [data, split, retrain]
    with: {{model: retrain, reference: retrain{reference_on}}}
  pick:
    kind: select
    needs: [trial_val, retrain_val]
    with: {{reference: retrain_val, vars: {vars}}}
  final:
    kind: unlearn
    needs: [data, split, original, pick]
    with: {{method: finetune, from: pick}}
"
    )
}

#[test]
fn no_peeking_is_enforced_at_planning() {
    let f = Fixture::new();
    let v = ", validation: 0.2";
    let on = ", on: validation";
    // The well-formed search plans.
    f.write("ok.yaml", &search_pipeline(v, on, on, "[lr]"));
    let out = f.run(&["status", "ok.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, text, want) in [
        (
            "trials_on_test.yaml",
            search_pipeline(v, "", on, "[lr]"),
            "trial `trial_val@lr=0.01` is evaluated on the test part",
        ),
        (
            "reference_on_test.yaml",
            search_pipeline(v, on, "", "[lr]"),
            "its reference `retrain_val` is evaluated on the test part",
        ),
        (
            "unknown_var.yaml",
            search_pipeline(v, on, on, "[lr, momentum]"),
            "`vars` names `momentum`, which is not a matrix variable of trial `trial_val@lr=0.01`",
        ),
        (
            "no_validation_part.yaml",
            search_pipeline("", on, on, "[lr]"),
            "evaluates `on: validation`, but its split `split` has no validation part",
        ),
        (
            "from_unaccepted.yaml",
            search_pipeline(v, on, on, "[lr]")
                .replace("method: finetune, from: pick", "method: ssd, from: pick"),
            "`from: pick` sets `lr`, which method `ssd` does not accept",
        ),
        (
            "reference_is_a_trial.yaml",
            search_pipeline(v, on, on, "[lr]").replace(
                "reference: retrain_val, vars",
                "reference: trial_val@lr=0.1, vars",
            ),
            "its reference `trial_val@lr=0.1` is one of the trials (it sets the searched `lr`)",
        ),
        (
            "reference_is_every_trial.yaml",
            search_pipeline(v, on, on, "[lr]")
                .replace("reference: retrain_val, vars", "reference: trial_val, vars"),
            "its reference `trial_val@lr=0.01` is one of the trials (it sets the searched `lr`)",
        ),
        (
            "no_trials.yaml",
            search_pipeline(v, on, on, "[lr]").replace(
                "needs: [trial_val, retrain_val]",
                "needs: [trial, retrain_val]",
            ),
            "no trials among its needs",
        ),
    ] {
        f.write(name, &text);
        let out = f.run(&["status", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// Runs download and split: needs the ML worker.
#[cfg(feature = "worker")]
#[test]
fn an_empty_validation_part_is_an_error() {
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  data:\n    kind: download\n    with: {dataset: synthetic}\n  split:\n    kind: split\n    needs: [data]\n    with: {scenario: random, fraction: 0.1, validation: 0.0001}\n",
    );
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the validation part must hold at least one sample"),
        "{err}"
    );
}

#[test]
fn smaller_items_names_caches_modes_sizes_and_cpus() {
    let f = Fixture::new();
    // `.` and `..` are not stage names.
    for name in [".", ".."] {
        f.write(
            "dots.yaml",
            &format!("stages:\n  '{name}':\n    kind: command\n    command: 'true'\n"),
        );
        let out = f.run(&["status", "dots.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid stage name"));
    }
    // Reading commands leave a mistyped --cache uncreated.
    f.write(
        "p.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'echo a > ${out}/o.txt'\n",
    );
    for args in [
        vec!["status", "p.yaml", "--cache", "typo1"],
        vec!["report", "p.yaml", "--cache", "typo2"],
        vec!["run", "p.yaml", "--dry-run", "--cache", "typo3"],
        vec!["gc", "p.yaml", "--dry-run", "--cache", "typo4"],
    ] {
        let out = f.run(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !f.path(args[args.len() - 1]).exists(),
            "{args:?} created the cache"
        );
    }
    // Records and lock files follow the umask (a group-shared cache stays readable).
    let out = f.cmd(&["run", "p.yaml"]).output().unwrap();
    assert!(out.status.success());
    let records: Vec<_> = std::fs::read_dir(f.path("cache/records"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!records.is_empty());
    for r in records {
        let mode = r.metadata().unwrap().mode() & 0o777;
        assert_ne!(mode & 0o044, 0, "record mode {mode:o}");
    }
    assert_ne!(
        std::fs::metadata(f.path("p.lock.json")).unwrap().mode() & 0o044,
        0
    );
    // A synthetic set of a million classes is refused before anything runs.
    f.write(
        "big.yaml",
        "stages:\n  d:\n    kind: download\n    with: {dataset: synthetic, classes: 1000000}\n",
    );
    let out = f.run(&["status", "big.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than the synthetic set's 1000"));
    // More CPU threads than the run has: said, not silent.
    f.write(
        "cpus.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'true'\n    resources: {cpus: 100000}\n",
    );
    let out = f.run(&["run", "cpus.yaml", "--cpus", "2"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ask for more CPU threads than the 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_command_longer_than_the_system_runs_is_refused_at_planning() {
    let f = Fixture::new();
    let long = "x".repeat(1 << 20);
    f.write(
        "p.yaml",
        &format!("stages:\n  a:\n    kind: command\n    command: 'echo {long} > ${{out}}/o'\n"),
    );
    let out = f.run(&["run", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", &err[..err.len().min(500)]);
    assert!(err.contains("the system runs none over 131072"));
    assert!(err.len() < 4096, "{} bytes of error", err.len());
}

#[test]
fn outputs_that_are_not_files_are_named_and_huge_logs_are_cut() {
    let f = Fixture::new();
    for (what, make, want) in [
        (
            "dir",
            "mkdir ${out}/o",
            "declared output `o` is a directory",
        ),
        ("fifo", "mkfifo ${out}/o", "declared output `o` is a FIFO"),
    ] {
        let name = format!("{what}.yaml");
        f.write(
            &name,
            &format!("stages:\n  a:\n    kind: command\n    command: '{make}'\n    outputs: [o]\n"),
        );
        let out = f.run(&["run", &name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
    }
    // 20 MB of output: the log keeps its head and tail and says what it left out.
    f.write(
        "log.yaml",
        "stages:\n  a:\n    kind: command\n    command: 'head -c 20000000 /dev/zero | tr \"\\0\" x; echo; echo the-end; touch ${out}/o'\n",
    );
    let out = f.run(&["run", "log.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs: Vec<_> = std::fs::read_dir(f.path("cache/logs"))
        .unwrap()
        .flatten()
        .collect();
    let big = logs
        .iter()
        .map(|l| std::fs::read(l.path()).unwrap())
        .find(|b| b.windows(7).any(|w| w == b"the-end"))
        .expect("the log with the stage's last line");
    assert!(big.len() < 6 << 20, "{} bytes kept", big.len());
    let text = String::from_utf8_lossy(&big);
    assert!(text.contains("bytes of this log left out"));
}
