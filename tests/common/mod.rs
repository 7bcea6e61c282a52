//! Helpers for tests that drive the real camu-pipe binary in a scratch directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_camu-pipe"))
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// A camu-pipe command in the fixture directory, with its cache there.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path())
            .args(args)
            .env("CAMU_CACHE_DIR", self.path("cache"))
            .env("CAMU_DATA_DIR", self.path("data"))
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("CAMU_GPUS")
            .env_remove("CAMU_CPUS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run camu-pipe")
    }

    /// Runs with --json and returns the parsed events plus the exit code.
    pub fn run_json(&self, args: &[&str]) -> (Vec<serde_json::Value>, i32, String) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (
            events,
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Lines appended to a marker file (one per stage execution).
    pub fn lines(&self, rel: &str) -> Vec<String> {
        self.read(rel).lines().map(String::from).collect()
    }
}

/// Names of stages with the given event, in order.
pub fn stages_with(events: &[serde_json::Value], event: &str) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["stage"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// A command stage that fails until its third attempt (it counts attempts in `count`, beside
/// the pipeline), with `RETRIES` to be replaced by a number.
pub const FLAKY: &str = r#"
stages:
  flaky:
    kind: command
    resources: {retries: RETRIES}
    outputs: [ok.txt]
    command: "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; echo attempt $n; test $n -ge 3 && echo $n > ${out}/ok.txt"
"#;

/// Runs [`FLAKY`] with 2 retries (it succeeds on its last attempt, after two kept logs) and
/// with 1 (it fails after two attempts), with `extra` arguments to `run`.
pub fn flaky_stage_succeeds_only_with_enough_retries(extra: &[&str]) {
    let f = Fixture::new();
    f.write("p.yaml", &FLAKY.replace("RETRIES", "2"));
    let mut args = vec!["run", "p.yaml"];
    args.extend(extra);
    let (ev, code, err) = f.run_json(&args);
    assert_eq!(code, 0, "{err}");
    let retried: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "retrying")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(retried, [1, 2], "{ev:?}");
    assert_eq!(f.read("count").trim(), "3");
    let key = ev.iter().find(|e| e["event"] == "finished").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let record: serde_json::Value =
        serde_json::from_str(&f.read(&format!("cache/records/{key}.json"))).unwrap();
    assert_eq!(record["attempts"], 3, "{record}");
    for n in 1..=2 {
        let log = f.read(&format!("cache/logs/{key}.attempt-{n}.log"));
        assert!(log.contains(&format!("attempt {n}\n")), "{log}");
    }
    assert!(
        f.read(&format!("cache/logs/{key}.log"))
            .contains("attempt 3\n")
    );

    let f = Fixture::new();
    f.write("p.yaml", &FLAKY.replace("RETRIES", "1"));
    let (ev, code, _) = f.run_json(&args);
    assert_eq!(code, 1);
    assert_eq!(stages_with(&ev, "failed"), ["flaky"]);
    assert_eq!(f.read("count").trim(), "2");
}
