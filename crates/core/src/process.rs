//! Child-process handling shared by the executors and the `command` kind.

use std::os::unix::process::ExitStatusExt;

/// Makes a child process receive SIGKILL when the thread that spawned it dies, so a killed run
/// leaves no orphan stages writing into the cache.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Environment that tells libraries how many threads and which GPUs a stage owns.
pub fn resource_env(threads: usize, gpus: &[String]) -> Vec<(&'static str, String)> {
    let t = threads.to_string();
    vec![
        ("CAMU_THREADS", t.clone()),
        ("OMP_NUM_THREADS", t.clone()),
        ("MKL_NUM_THREADS", t.clone()),
        ("RAYON_NUM_THREADS", t),
        // An empty list hides every GPU from a CPU stage.
        ("CUDA_VISIBLE_DEVICES", gpus.join(",")),
        ("CAMU_GPUS", gpus.join(",")),
    ]
}

/// "exit status 3" or "killed by signal 9".
pub fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}
