//! The ML stage worker: `camu-worker exec-stage JOB.json` runs one stage of an ML kind (download,
//! split, train, unlearn, evaluate). It is the only camu-pipe binary that links libtorch; the
//! `camu-pipe` command line starts it for those stages and never loads libtorch itself.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["exec-stage", job] => {
            // The stage process: stdout and stderr are the stage's log (a file: no colours).
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .try_init();
            match camu_core::stage::exec_job(job.as_ref(), camu_torch::stages::RUNNERS) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["--version"] | ["-V"] => {
            println!("camu-worker {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: camu-worker exec-stage JOB.json\n\nThe ML stage worker that `camu-pipe run` starts; not meant to be run by hand."
            );
            ExitCode::from(2)
        }
    }
}
