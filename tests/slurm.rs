//! The SLURM executor against a real cluster (scripts/slurm-localhost.sh starts one on localhost
//! with two fake GPUs). Skipped, with a message, where no cluster answers.

mod common;

use common::{Fixture, stages_with};

fn cluster_up() -> bool {
    std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// True, after saying so, where no cluster answers: the test is skipped.
fn no_cluster() -> bool {
    let none = !cluster_up();
    if none {
        eprintln!(
            "SKIPPED: no SLURM cluster answers `sinfo` (scripts/slurm-localhost.sh starts one)"
        );
    }
    none
}

/// The run the kill tests start and kill.
const HEAD: [&str; 6] = [
    "run",
    "p.yaml",
    "--executor",
    "slurm",
    "--slurm-poll",
    "0.5",
];

/// Puts `bin/TOOL` in the fixture: a script that runs `before`, then the real TOOL.
fn wrap(f: &Fixture, tool: &str, before: &str) {
    use std::os::unix::fs::PermissionsExt;
    let real = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    std::fs::create_dir_all(f.path("bin")).unwrap();
    let w = f.write(
        &format!("bin/{tool}"),
        &format!("#!/bin/sh\n{before}\nexec {real} \"$@\"\n"),
    );
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with the fixture's wrappers first.
fn wrapped_path(f: &Fixture) -> String {
    format!(
        "{}:{}",
        f.path("bin").display(),
        std::env::var("PATH").unwrap()
    )
}

const PIPELINE: &str = r#"
stages:
  first:
    kind: command
    resources: {cpus: 1, gpus: 1}
    command: "echo $SLURM_JOB_ID > ${out}/job.txt"
  fan:
    kind: command
    needs: [first]
    matrix: {i: [1, 2, 3]}
    resources: {cpus: 1, gpus: 1}
    command: "s=$(date +%s.%N); sleep 2; echo \"${i} $s $(date +%s.%N) $SLURM_JOB_ID\" >> spans.log; cat ${in.first}/job.txt > ${out}/first.txt"
"#;

#[test]
fn stages_run_as_slurm_jobs_within_gres_limits() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    f.write("p.yaml", PIPELINE);
    let (ev, code, err) =
        f.run_json(&["run", "p.yaml", "--executor", "slurm", "--slurm-poll", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stages_with(&ev, "finished"),
        ["fan@i=1", "fan@i=2", "fan@i=3", "first"]
    );
    // Each stage ran as its own job, after its input was ready.
    let spans: Vec<(f64, f64, String)> = f
        .lines("spans.log")
        .iter()
        .map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (
                p[1].parse().unwrap(),
                p[2].parse().unwrap(),
                p[3].to_string(),
            )
        })
        .collect();
    assert_eq!(spans.len(), 3);
    let mut ids: Vec<&String> = spans.iter().map(|s| &s.2).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "stages shared a SLURM job: {spans:?}");
    // Two fake GPUs: SLURM never ran all three one-GPU jobs at once.
    let most = spans
        .iter()
        .map(|(s, _, _)| spans.iter().filter(|(a, b, _)| a <= s && s < b).count())
        .max();
    assert!(most <= Some(2), "{spans:?}");
    // Cached afterwards, like any local run.
    let (ev, _, _) = f.run_json(&["run", "p.yaml", "--executor", "slurm"]);
    assert!(stages_with(&ev, "finished").is_empty());
}

#[test]
fn a_failed_job_fails_its_stage() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    f.write("p.yaml", "stages:\n  bad:\n    kind: command\n    command: 'echo from-slurm; exit 3'\n  after:\n    kind: command\n    needs: [bad]\n    command: 'touch after'\n");
    let out = f.run(&["run", "p.yaml", "--executor", "slurm", "--slurm-poll", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("SLURM job") && err.contains("FAILED"), "{err}");
    assert!(err.contains("from-slurm"), "log tail missing: {err}");
    assert!(!f.path("after").exists(), "a dependent of a failed job ran");
}

#[test]
fn a_flaky_stage_is_retried_as_new_slurm_jobs() {
    if no_cluster() {
        return;
    }
    common::flaky_stage_succeeds_only_with_enough_retries(&[
        "--executor",
        "slurm",
        "--slurm-poll",
        "1",
    ]);
}

#[test]
fn one_squeue_per_poll_answers_for_every_job() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    // Wrappers that log each call of the SLURM commands, then run the real one.
    let calls = f.path("calls.log");
    for tool in ["squeue", "scontrol", "sbatch"] {
        wrap(&f, tool, &format!("echo {tool} >> '{}'", calls.display()));
    }
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    matrix: {i: [1, 2, 3, 4, 5, 6]}\n    command: 'sleep 3; echo ${i} > ${out}/i.txt'\n",
    );
    let started = std::time::Instant::now();
    let out = f
        .cmd(&[
            "run",
            "p.yaml",
            "--executor",
            "slurm",
            "--slurm-poll",
            "1",
            "--jobs",
            "6",
        ])
        .env("PATH", wrapped_path(&f))
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = f.lines("calls.log");
    let count = |t: &str| calls.iter().filter(|c| *c == t).count();
    assert_eq!(count("sbatch"), 6, "{calls:?}");
    // Per job, a poll every second would be 6 queries a second; batched it is one, and a job
    // squeue lists never needs scontrol.
    assert_eq!(count("scontrol"), 0, "{calls:?}");
    assert!(
        (count("squeue") as f64) <= wall + 2.0,
        "{} squeue calls in {wall:.1}s",
        count("squeue")
    );
}

#[test]
fn a_new_run_adopts_the_jobs_of_a_killed_one_and_runs_nothing_twice() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    // Five 8-second stages on a 2-CPU node: when the first run dies, two run and three wait;
    // by the second run two have finished unwatched, two run and one waits.
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    matrix: {i: [1, 2, 3, 4, 5]}\n    command: 'echo ${i} >> execs.log; sleep 8; echo ${i} > ${out}/i.txt'\n",
    );
    let mut head = f
        .cmd(&HEAD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let submissions = f.path("cache/submissions");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let recorded = || {
        std::fs::read_dir(&submissions)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"job\": \""))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    while (recorded() < 5 || f.read("execs.log").lines().count() < 1)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(recorded(), 5, "not every job was recorded in time");
    head.kill().unwrap(); // SIGKILL: no scancel, the jobs go on
    head.wait().unwrap();
    let status = f.run(&["status", "p.yaml"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        status.matches("the next `run` adopts it").count(),
        5,
        "{status}"
    );
    std::thread::sleep(std::time::Duration::from_secs(9));

    let (ev, code, err) =
        f.run_json(&["run", "p.yaml", "--executor", "slurm", "--slurm-poll", "1"]);
    assert_eq!(code, 0, "{err}");
    let adopted = ev
        .iter()
        .filter(|e| e["event"] == "started")
        .filter(|e| {
            e["reasons"][0]
                .as_str()
                .is_some_and(|r| r.starts_with("adopted batch job"))
        })
        .count();
    assert_eq!(adopted, 5, "{ev:?}");
    let mut execs = f.lines("execs.log");
    execs.sort();
    assert_eq!(
        execs,
        ["1", "2", "3", "4", "5"],
        "a stage ran twice or not at all"
    );
    assert_eq!(std::fs::read_dir(&submissions).unwrap().count(), 0);
    for i in 1..=5 {
        let out = f.run(&["path", "p.yaml", &format!("s@i={i}")]);
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/i.txt"))
                .unwrap()
                .trim(),
            i.to_string()
        );
    }
}

#[test]
fn four_quarter_gpu_stages_share_one_job_on_one_gpu() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    f.write(
        "p.yaml",
        "stages:\n  q:\n    kind: command\n    matrix: {i: [1, 2, 3, 4]}\n    resources: {gpus: 0.25}\n    command: 'echo \"${i} $SLURM_JOB_ID $(date +%s.%N)\" >> starts.log; sleep 4; echo \"${i} $(date +%s.%N)\" >> ends.log; echo ${i} > ${out}/i.txt'\n",
    );
    // The test node has 2 CPUs: the agent asks for 2, not 4 x 1.
    let (ev, code, err) = f.run_json(&[
        "run",
        "p.yaml",
        "--executor",
        "slurm",
        "--agent-cpus",
        "2",
        "--slurm-poll",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stages_with(&ev, "finished"),
        ["q@i=1", "q@i=2", "q@i=3", "q@i=4"]
    );
    let starts = f.lines("starts.log");
    let jobs: std::collections::BTreeSet<&str> = starts
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1, "one SLURM job for the four: {starts:?}");
    let time = |l: &String, k: usize| l.split_whitespace().nth(k).unwrap().parse::<f64>().unwrap();
    let last_start = starts.iter().map(|l| time(l, 2)).fold(f64::MIN, f64::max);
    let first_end = f
        .lines("ends.log")
        .iter()
        .map(|l| time(l, 1))
        .fold(f64::MAX, f64::min);
    assert!(last_start < first_end, "the four did not run at once");
    // Each stage keeps a log of its own.
    for e in ev.iter().filter(|e| e["event"] == "finished") {
        let log = f.read(&format!("cache/logs/{}.log", e["key"].as_str().unwrap()));
        assert!(
            log.contains(&format!("stage={}", e["stage"].as_str().unwrap())),
            "{log}"
        );
    }
}

#[test]
fn a_submission_cut_off_before_sbatch_answered_is_submitted_by_the_next_run() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    // While `hang` exists, sbatch never answers (and submits nothing): the head is killed with
    // three submissions recorded and no job id in any.
    wrap(&f, "sbatch", "[ -e hang ] && { sleep 20; exit 1; }");
    f.write("hang", "");
    f.write(
        "p.yaml",
        "stages:\n  s:\n    kind: command\n    matrix: {i: [1, 2, 3]}\n    command: 'echo ${i} >> execs.log; echo ${i} > ${out}/i.txt'\n",
    );
    let mut head = f
        .cmd(&HEAD)
        .env("PATH", wrapped_path(&f))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let submissions = f.path("cache/submissions");
    let recorded = || std::fs::read_dir(&submissions).map_or(0, |d| d.count());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while recorded() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(recorded(), 3, "the submissions were not recorded in time");
    head.kill().unwrap();
    head.wait().unwrap();
    std::fs::remove_file(f.path("hang")).unwrap();

    let out = f.cmd(&HEAD).env("PATH", wrapped_path(&f)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut execs = f.lines("execs.log");
    execs.sort();
    assert_eq!(execs, ["1", "2", "3"], "a stage ran twice or not at all");
    assert_eq!(recorded(), 0);
}

#[test]
fn a_stage_past_its_time_limit_is_ended_by_slurm_and_fails_saying_so() {
    if no_cluster() {
        return;
    }
    let f = Fixture::new();
    // SLURM's limits are whole minutes: a one-minute stage that would sleep ten.
    f.write(
        "p.yaml",
        "stages:\n  slow:\n    kind: command\n    resources: {time: 1m}\n    command: 'sleep 600; touch done'\n",
    );
    let started = std::time::Instant::now();
    let out = f.run(&["run", "p.yaml", "--executor", "slurm", "--slurm-poll", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("time limit 1m exceeded"), "{err}");
    assert!(!f.path("done").exists());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(400),
        "not ended by its limit"
    );
}
