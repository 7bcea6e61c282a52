//! The report page in a real browser: `compare` over command stages that write evaluation
//! metrics, then headless Chromium loads report.html from disk. Skipped, with a message, where
//! no `chromium` is installed (CI installs Debian's).

mod common;

use common::Fixture;
use std::path::Path;
use std::process::Command;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(String::from)
}

/// Loads `page` in headless `browser` twice: once for the DOM after its scripts ran (with the
/// browser's log), once for a 1366 x 900 screenshot into `shot`. Fails on a console error or
/// where the page's script did not run.
fn load(browser: &str, profile: &Path, page: &Path, shot: &Path) -> (String, String) {
    let url = format!("file://{}", page.display());
    let headless = |extra: &[&str]| {
        let mut c = Command::new(browser);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(extra)
        .arg(&url);
        c.output().unwrap()
    };
    let dom = headless(&["--dump-dom", "--virtual-time-budget=5000"]);
    let text = String::from_utf8_lossy(&dom.stdout).into_owned();
    let log = String::from_utf8_lossy(&dom.stderr).into_owned();
    assert!(
        text.contains("data-js=\"ok\""),
        "the page's script did not run: {log}"
    );
    assert!(!log.contains("Uncaught"), "console errors: {log}");
    let out = headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1366,900",
    ]);
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    (text, log)
}

/// Milliseconds from navigation to the load event, as the page itself measured them
/// (`performance.now()` in its load handler; real time, also under a virtual-time budget).
fn load_ms(dom: &str, log: &str) -> f64 {
    dom.split("data-load-ms=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no load time in the page: {log}"))
}

/// Evaluations of retrain and three methods over three seeds, and a compare stage over them.
const PIPELINE: &str = r#"
stages:
  ev:
    kind: command
    matrix: {method: [retrain, camu, scrub, finetune], seed: [0, 1, 2]}
    command: |
      case ${method} in
        retrain) ra=0.90; fa=0.85; t=100 ;;
        camu) ra=0.89; fa=0.86; t=10 ;;
        scrub) ra=0.91; fa=0.89; t=12 ;;
        finetune) ra=0.92; fa=0.91; t=30 ;;
      esac
      ra=$(awk -v a=$ra -v s=${seed} 'BEGIN {print a + s / 1000}')
      printf '{"method": "%s", "dataset": "synthetic", "scenario": {"scenario": "random", "fraction": 0.1}, "seed": %s, "acc_remain_train": %s, "acc_forget_train": %s, "acc_test": 0.84, "mia_camu": 0.5, "unlearn_time_s": %s}' ${method} ${seed} $ra $fa $t > ${out}/metrics.json
    outputs: [metrics.json]
  compare:
    kind: compare
    needs: [ev]
"#;

#[test]
fn the_report_page_loads_in_a_browser_with_its_tables_and_figures() {
    let f = Fixture::new();
    f.write("p.yaml", PIPELINE);
    let out = f.run(&["run", "p.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(f.run(&["path", "p.yaml", "compare"]).stdout).unwrap();
    let page = std::path::PathBuf::from(dir.trim()).join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for needle in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    assert_eq!(html.matches("<table class=\"sortable\"").count(), 1);
    assert!(html.contains("<figure"), "no figure");
    assert!(html.contains("title=\"mean ± population std over 3 value(s); seeds 0, 1, 2\""));

    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser part: no chromium installed (Debian: apt-get install chromium)"
        );
        return;
    };
    let shot = f.path("shot.png");
    let (text, log) = load(&browser, &f.path("chrome-profile"), &page, &shot);
    assert!(text.contains("<svg"), "no figure in the rendered page");
    let ms = load_ms(&text, &log);
    assert!(ms < 1000.0, "loaded in {ms} ms");
    // A screenshot at a laptop's width: the size the browser says, and not blank.
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1366, 900));
    // A white page compresses to a few kilobytes; text, tables and a figure do not.
    assert!(
        png.len() > 30_000,
        "screenshot of {} bytes: blank?",
        png.len()
    );
}

/// The page `camu-pipe report pipelines/fashion-tuned.yaml` wrote for the full run (235 stages,
/// committed in docs/fashion-tuned): every view filled, under 5 MB, and under a second from
/// navigation to load in the browser.
#[test]
fn the_fashion_tuned_page_is_complete_under_5_mb_and_loads_in_under_a_second() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/fashion-tuned/report.html");
    let bytes = std::fs::metadata(&page)
        .unwrap_or_else(|e| panic!("{}: {e}", page.display()))
        .len();
    assert!(bytes < 5_000_000, "{} is {bytes} bytes", page.display());
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    // The whole run, nothing missing: every stage in the timeline, both scenarios' tables, the
    // eight searches, per-class heatmaps and layer-wise CKA per scenario.
    assert!(
        html.contains(">235 stages with a cached result"),
        "not the full run"
    );
    assert!(!html.contains("Not yet computed"), "a partial run");
    assert!(!html.contains("not recorded"), "a view without its data");
    for section in ["id=\"results\"", "id=\"searches\"", "id=\"run\""] {
        assert!(html.contains(section), "no {section}");
    }
    // Per scenario: accuracy and difference to retrain on test, Df and Dr, and the CKA table.
    const HEAT_TABLES: usize = 2 * (3 * 2 + 1);
    // Per scenario: the bars and time against gap; and the timeline (searches are tables).
    const FIGURES: usize = 2 * 2 + 1;
    assert_eq!(html.matches("class=\"sortable heat\"").count(), HEAT_TABLES);
    assert_eq!(html.matches("<svg").count(), FIGURES);

    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser part: no chromium installed (Debian: apt-get install chromium)"
        );
        return;
    };
    let f = Fixture::new();
    let (text, log) = load(
        &browser,
        &f.path("chrome-profile"),
        &page,
        &f.path("shot.png"),
    );
    assert_eq!(
        text.matches("<svg").count(),
        FIGURES,
        "figures lost in the browser"
    );
    let ms = load_ms(&text, &log);
    assert!(ms < 1000.0, "loaded in {ms} ms");
}
