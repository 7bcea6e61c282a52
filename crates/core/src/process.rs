//! Child-process handling shared by the executors and the `command` kind.

use std::os::unix::process::ExitStatusExt;

/// Makes a child process receive `signal` when the thread that spawned it dies, so a killed run
/// leaves no orphan stages writing into the cache.
pub fn die_with_parent(cmd: &mut std::process::Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, signal);
            Ok(())
        });
    }
}

extern "C" fn kill_own_group(_: libc::c_int) {
    // SAFETY: kill is async-signal-safe; 0 is this process's own group.
    unsafe { libc::kill(0, libc::SIGKILL) };
}

/// In a stage process (the leader of its own process group): SIGTERM, which it receives when
/// camu-pipe dies or cancels the run, kills the whole group at once, grandchildren included, so
/// no program a stage started keeps writing after its run is gone.
pub fn take_group_down_on_term() {
    // SAFETY: installs an async-signal-safe handler.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            kill_own_group as *const () as libc::sighandler_t,
        )
    };
}

/// Makes this process the reaper of every orphan among its descendants: a program a stage starts
/// in the background (`&`, `setsid`, a double fork) becomes this process's child when its parent
/// exits, so [`reap_descendants`] can find it.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on the calling process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// This process's children (every thread's), from /proc.
fn children() -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    for t in tasks {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                s.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Kills and reaps every process still descending from this one (with [`become_subreaper`],
/// also those that left their parent or their session). Returns how many were killed. A stage
/// calls it when its work has ended, so nothing it started can write into its outputs after
/// they are hashed.
pub fn reap_descendants() -> usize {
    let mut killed = 0;
    for _ in 0..10_000 {
        let kids = children();
        if kids.is_empty() {
            break;
        }
        for pid in kids {
            // SAFETY: signalling and reaping our own children.
            unsafe {
                if libc::kill(pid, libc::SIGKILL) == 0 {
                    killed += 1;
                }
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    killed
}

/// Variables the scheduler sets for every stage (threads, GPUs) besides camu-pipe's own
/// `CAMU_*`: a stage's `env:` may not set them, or it could claim GPUs or threads it was not
/// granted.
pub const RESERVED_ENV: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "RAYON_NUM_THREADS",
];

/// Why `name` cannot be a stage's `env:` variable, if it cannot: it must be a POSIX name
/// (letters, digits and `_`, not starting with a digit) and not one the scheduler or camu-pipe
/// sets.
pub fn env_name_problem(name: &str) -> Option<String> {
    let posix = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !posix {
        return Some(format!(
            "`{}` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)",
            name.escape_debug()
        ));
    }
    if name.starts_with("CAMU_") || RESERVED_ENV.contains(&name) {
        return Some(format!(
            "`{name}` is set by camu-pipe for every stage (threads, GPUs, paths) and cannot be overridden in `env`"
        ));
    }
    None
}

/// Why a list of GPU ids (from `--gpus`, `CAMU_GPUS` or `CUDA_VISIBLE_DEVICES`) is unusable, if
/// it is: each id is an index or a UUID (`GPU-...`, `MIG-...`: letters, digits, `-`, `/`, `:`)
/// and appears once, since two whole-GPU stages given the same device would share it.
pub fn gpu_ids_problem(ids: &[String]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let ok = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | ':'));
        if !ok {
            return Some(format!(
                "GPU id `{}` is malformed: ids are indices (`0`) or UUIDs (`GPU-...`), separated by commas",
                id.escape_debug()
            ));
        }
        if !seen.insert(id.as_str()) {
            return Some(format!("GPU id `{id}` is listed twice"));
        }
    }
    None
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

/// Waits for a child's exit without polling: a pidfd (Linux 5.3+) becomes readable when the
/// child exits. Where none can be opened, waiting falls back to short sleeps.
pub struct ExitWatch {
    fd: Option<std::os::fd::OwnedFd>,
}

impl ExitWatch {
    pub fn new(child: &std::process::Child) -> ExitWatch {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
        ExitWatch {
            // SAFETY: a non-negative result is a descriptor this process now owns.
            fd: (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }),
        }
    }

    /// Returns when the child has exited or `timeout` has passed, whichever is first.
    pub fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        match &self.fd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
            }
            None => std::thread::sleep(timeout.min(std::time::Duration::from_millis(5))),
        }
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn env_names_must_be_posix_and_not_the_schedulers() {
        for ok in ["X", "_a1", "PYTHONHASHSEED", "MY_VAR"] {
            assert_eq!(env_name_problem(ok), None, "{ok}");
        }
        for bad in ["", "A=B", "1X", "has space", "é"] {
            assert!(
                env_name_problem(bad).unwrap().contains("not a valid"),
                "{bad}"
            );
        }
        for reserved in [
            "CUDA_VISIBLE_DEVICES",
            "OMP_NUM_THREADS",
            "CAMU_OUT",
            "CAMU_THREADS",
        ] {
            assert!(
                env_name_problem(reserved)
                    .unwrap()
                    .contains("cannot be overridden")
            );
        }
    }

    #[test]
    fn gpu_ids_are_indices_or_uuids_listed_once() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            gpu_ids_problem(&ids(&["0", "1", "GPU-8f6e-11aa", "MIG-GPU-1/2/0"])),
            None
        );
        assert!(
            gpu_ids_problem(&ids(&["0", "0"]))
                .unwrap()
                .contains("twice")
        );
        assert!(
            gpu_ids_problem(&ids(&["0 1"]))
                .unwrap()
                .contains("malformed")
        );
        assert!(gpu_ids_problem(&ids(&[""])).unwrap().contains("malformed"));
    }
}
