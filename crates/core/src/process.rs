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
