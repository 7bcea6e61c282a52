//! The resource scheduler: CPU threads and GPU ids shared by the stages that run at once. A
//! stage takes whole GPUs of its own, or a fraction of one GPU that other fractional stages share;
//! the fractions on one GPU never add up to more than the whole.

use crate::spec::{Gpus, Resources};

/// What a started stage holds until it finishes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Grant {
    pub threads: usize,
    /// Device ids, and the thousandths of each that the stage holds.
    pub gpus: Vec<(String, u32)>,
}

impl Grant {
    pub fn gpu_ids(&self) -> Vec<String> {
        self.gpus.iter().map(|(id, _)| id.clone()).collect()
    }
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
    /// Every GPU id, with the thousandths of it still free.
    gpus: Vec<(String, u32)>,
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
            gpus: gpus.into_iter().map(|id| (id, Gpus::WHOLE)).collect(),
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
        if want.gpus.touched() > self.gpus.len() {
            return Fit::Never(format!(
                "needs {} GPU(s) but {} are available (see --gpus)",
                want.gpus,
                self.gpus.len()
            ));
        }
        let threads = want.cpus.clamp(1, self.cpus);
        if threads > self.free_cpus {
            return Fit::Later;
        }
        let Some(gpus) = self.pick_gpus(want.gpus) else {
            return Fit::Later;
        };
        for (i, milli) in &gpus {
            self.gpus[*i].1 -= milli;
        }
        self.free_cpus -= threads;
        self.running += 1;
        Fit::Now(Grant {
            threads,
            gpus: gpus
                .into_iter()
                .map(|(i, m)| (self.gpus[i].0.clone(), m))
                .collect(),
        })
    }

    /// Indices and thousandths: whole stages take entirely free GPUs; a fraction goes to the
    /// fullest GPU it still fits on, so fractions pack together and whole GPUs stay free.
    fn pick_gpus(&self, want: Gpus) -> Option<Vec<(usize, u32)>> {
        if want.is_fraction() {
            return self
                .gpus
                .iter()
                .enumerate()
                .filter(|(_, (_, free))| *free >= want.milli())
                .min_by_key(|(i, (_, free))| (*free, *i))
                .map(|(i, _)| vec![(i, want.milli())]);
        }
        let free: Vec<(usize, u32)> = self
            .gpus
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| *f == Gpus::WHOLE)
            .map(|(i, _)| (i, Gpus::WHOLE))
            .take(want.whole())
            .collect();
        (free.len() == want.whole()).then_some(free)
    }

    pub fn give_back(&mut self, g: Grant) {
        self.running -= 1;
        if self.remote {
            return;
        }
        self.free_cpus += g.threads;
        for (id, milli) in g.gpus {
            if let Some(slot) = self.gpus.iter_mut().find(|(i, _)| *i == id) {
                slot.1 += milli;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpus: usize, gpus: f64) -> Resources {
        Resources {
            cpus,
            gpus: Gpus::parse(gpus).unwrap(),
            ..Resources::default()
        }
    }

    fn ids(f: &Fit) -> Vec<String> {
        match f {
            Fit::Now(g) => g.gpu_ids(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn packs_threads_and_gpu_ids_and_never_oversubscribes() {
        let mut s = Slots::new(4, vec!["0".into(), "1".into()], false, None);
        let Fit::Now(a) = s.try_take(&res(2, 1.0)) else {
            panic!()
        };
        assert_eq!(a.gpu_ids(), ["0"]);
        assert_eq!(ids(&s.try_take(&res(2, 1.0))), ["1"]);
        assert_eq!(s.try_take(&res(1, 0.0)), Fit::Later);
        s.give_back(a);
        assert!(
            matches!(s.try_take(&res(1, 1.0)), Fit::Now(g) if g.gpu_ids() == ["0"] && g.threads == 1)
        );
        assert!(matches!(s.try_take(&res(1, 3.0)), Fit::Never(_)));
        // More threads than the machine has: all of them, once everything else is done.
        let mut s = Slots::new(2, vec![], false, None);
        assert!(matches!(s.try_take(&res(8, 0.0)), Fit::Now(g) if g.threads == 2));
    }

    #[test]
    fn fractions_share_one_gpu_up_to_the_whole_and_leave_others_free() {
        let mut s = Slots::new(16, vec!["a".into(), "b".into()], false, None);
        let quarters: Vec<Fit> = (0..4).map(|_| s.try_take(&res(1, 0.25))).collect();
        assert!(quarters.iter().all(|f| ids(f) == ["a"]), "{quarters:?}");
        // `a` is full: the next quarter goes to `b`, and a whole GPU no longer fits.
        assert_eq!(ids(&s.try_take(&res(1, 0.25))), ["b"]);
        assert_eq!(s.try_take(&res(1, 1.0)), Fit::Later);
        // 0.75 is exactly what is left of `b`; after it nothing fits anywhere.
        assert_eq!(ids(&s.try_take(&res(1, 0.75))), ["b"]);
        assert_eq!(s.try_take(&res(1, 0.001)), Fit::Later);
        // Giving one quarter back frees a quarter of `a`, not a whole GPU.
        let Fit::Now(q) = quarters.into_iter().next().unwrap() else {
            panic!()
        };
        s.give_back(q);
        assert_eq!(s.try_take(&res(1, 0.5)), Fit::Later);
        assert_eq!(ids(&s.try_take(&res(1, 0.25))), ["a"]);
    }

    #[test]
    fn gpu_amounts_are_whole_devices_or_one_fraction() {
        assert_eq!(Gpus::parse(2.0).unwrap().whole(), 2);
        assert!(Gpus::parse(0.25).unwrap().is_fraction());
        assert_eq!(Gpus::parse(0.25).unwrap().touched(), 1);
        assert!(Gpus::parse(1.5).is_err());
        assert!(Gpus::parse(-1.0).is_err());
        assert!(Gpus::parse(0.0001).is_err());
    }

    #[test]
    fn remote_executors_get_only_the_job_cap() {
        let mut s = Slots::new(1, vec![], true, Some(2));
        assert!(
            matches!(s.try_take(&res(16, 4.0)), Fit::Now(g) if g.threads == 16 && g.gpus.is_empty())
        );
        assert!(matches!(s.try_take(&res(16, 4.0)), Fit::Now(_)));
        assert_eq!(s.try_take(&res(1, 0.0)), Fit::Later);
    }
}
