//! The resource scheduler: CPU threads and GPU ids shared by the stages that run at once.

use crate::spec::Resources;

/// What a started stage holds until it finishes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Grant {
    pub threads: usize,
    pub gpus: Vec<String>,
}

/// Whether a stage can start.
#[derive(Debug, PartialEq)]
pub enum Fit {
    Now(Grant),
    /// Not until running stages give resources back.
    Later,
    /// Never on this machine (e.g. more GPUs than there are).
    Never(String),
}

pub struct Slots {
    cpus: usize,
    free_cpus: usize,
    gpus: usize,
    free_gpus: Vec<String>,
    /// The executor enforces limits itself (SLURM): only the job cap applies here.
    remote: bool,
    max_jobs: usize,
    running: usize,
}

impl Slots {
    pub fn new(cpus: usize, gpus: Vec<String>, remote: bool, max_jobs: Option<usize>) -> Slots {
        let cpus = cpus.max(1);
        Slots {
            cpus,
            free_cpus: cpus,
            gpus: gpus.len(),
            free_gpus: gpus,
            remote,
            max_jobs: max_jobs
                .unwrap_or(if remote { 64 } else { usize::MAX })
                .max(1),
            running: 0,
        }
    }

    pub fn running(&self) -> usize {
        self.running
    }

    /// Takes what `want` asks for, if it is free. A stage asking for more threads than the
    /// machine has gets all of them.
    pub fn try_take(&mut self, want: &Resources) -> Fit {
        if self.running >= self.max_jobs {
            return Fit::Later;
        }
        if self.remote {
            self.running += 1;
            return Fit::Now(Grant {
                threads: want.cpus.max(1),
                gpus: Vec::new(),
            });
        }
        if want.gpus > self.gpus {
            return Fit::Never(format!(
                "needs {} GPU(s) but {} are available (see --gpus)",
                want.gpus, self.gpus
            ));
        }
        let threads = want.cpus.clamp(1, self.cpus);
        if threads > self.free_cpus || want.gpus > self.free_gpus.len() {
            return Fit::Later;
        }
        self.free_cpus -= threads;
        self.running += 1;
        Fit::Now(Grant {
            threads,
            gpus: self.free_gpus.drain(..want.gpus).collect(),
        })
    }

    pub fn give_back(&mut self, g: Grant) {
        self.running -= 1;
        if !self.remote {
            self.free_cpus += g.threads;
            self.free_gpus.extend(g.gpus);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpus: usize, gpus: usize) -> Resources {
        Resources { cpus, gpus }
    }

    #[test]
    fn packs_threads_and_gpu_ids_and_never_oversubscribes() {
        let mut s = Slots::new(4, vec!["0".into(), "1".into()], false, None);
        let Fit::Now(a) = s.try_take(&res(2, 1)) else {
            panic!()
        };
        assert_eq!(a.gpus, ["0"]);
        let Fit::Now(b) = s.try_take(&res(2, 1)) else {
            panic!()
        };
        assert_eq!(b.gpus, ["1"]);
        assert_eq!(s.try_take(&res(1, 0)), Fit::Later);
        s.give_back(a);
        assert!(matches!(s.try_take(&res(1, 1)), Fit::Now(g) if g.gpus == ["0"] && g.threads == 1));
        assert!(matches!(s.try_take(&res(1, 3)), Fit::Never(_)));
        // More threads than the machine has: all of them, once everything else is done.
        let mut s = Slots::new(2, vec![], false, None);
        assert!(matches!(s.try_take(&res(8, 0)), Fit::Now(g) if g.threads == 2));
    }

    #[test]
    fn remote_executors_get_only_the_job_cap() {
        let mut s = Slots::new(1, vec![], true, Some(2));
        assert!(
            matches!(s.try_take(&res(16, 4)), Fit::Now(g) if g.threads == 16 && g.gpus.is_empty())
        );
        assert!(matches!(s.try_take(&res(16, 4)), Fit::Now(_)));
        assert_eq!(s.try_take(&res(1, 0)), Fit::Later);
    }
}
