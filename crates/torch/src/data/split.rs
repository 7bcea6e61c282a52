//! Forget / remain / sample splits: the artifact every method of one seed shares.

use tch::{Kind, Tensor};

pub use camu_lab::protocol::{Scenario, Split};

/// Seeded permutation of 0..n from libtorch's CPU generator (the same on every machine). The
/// generator is process-wide; a stage process draws from one thread, so the split is reproducible.
fn permutation(n: i64, seed: i64) -> Vec<i64> {
    tch::manual_seed(seed);
    Vec::<i64>::try_from(Tensor::randperm(n, (Kind::Int64, tch::Device::Cpu))).unwrap_or_default()
}

/// Builds a split of a training set with the given labels.
pub fn make(
    labels: &[i64],
    scenario: Scenario,
    seed: i64,
    forget_repeat: usize,
) -> Result<Split, crate::MlError> {
    let n = labels.len() as i64;
    let perm = permutation(n, seed);
    let mut in_forget = vec![false; labels.len()];
    match &scenario {
        Scenario::Random { fraction } => {
            if !(0.0..1.0).contains(fraction) || *fraction <= 0.0 {
                return Err(crate::MlError::Split(format!(
                    "fraction must be in (0, 1), got {fraction}"
                )));
            }
            let k = (fraction * n as f64).round() as usize;
            for &i in &perm[..k] {
                in_forget[i as usize] = true;
            }
        }
        Scenario::Class { classes } => {
            for (i, l) in labels.iter().enumerate() {
                in_forget[i] = classes.contains(l);
            }
        }
        Scenario::PerClass { proportions } => {
            for (class, p) in proportions {
                if !(0.0..=1.0).contains(p) {
                    return Err(crate::MlError::Split(format!(
                        "proportion for class {class} must be in [0, 1], got {p}"
                    )));
                }
                let members: Vec<i64> = perm
                    .iter()
                    .copied()
                    .filter(|&i| labels[i as usize] == *class)
                    .collect();
                let k = (p * members.len() as f64).round() as usize;
                for &i in &members[..k] {
                    in_forget[i as usize] = true;
                }
            }
        }
    }
    let forget: Vec<i64> = (0..n).filter(|&i| in_forget[i as usize]).collect();
    let remain: Vec<i64> = (0..n).filter(|&i| !in_forget[i as usize]).collect();
    if forget.is_empty() {
        return Err(crate::MlError::Split(
            "the forget set is empty (no sample matches the scenario)".into(),
        ));
    }
    let want = forget.len() * forget_repeat.max(1);
    if want > remain.len() {
        return Err(crate::MlError::Split(format!(
            "|Ds| = {want} exceeds |Dr| = {}",
            remain.len()
        )));
    }
    // Ds: a seeded draw from Dr, independent of the permutation that chose Df.
    let pick = permutation(remain.len() as i64, seed.wrapping_add(1_000_003));
    let mut sample: Vec<i64> = pick[..want].iter().map(|&j| remain[j as usize]).collect();
    sample.sort_unstable();
    Ok(Split {
        scenario,
        seed,
        forget,
        remain,
        sample,
        forget_repeat: forget_repeat.max(1),
        validation: None,
    })
}

/// A seeded `fraction` of the test set's `n_test` indices, sorted: the part held out for
/// choosing settings. Drawn from its own generator seed, so Df, Dr and Ds are the same with or
/// without it.
pub fn validation(n_test: i64, fraction: f64, seed: i64) -> Vec<i64> {
    let k = (fraction * n_test as f64).round() as usize;
    let mut v: Vec<i64> = permutation(n_test, seed.wrapping_add(2_000_003))[..k].to_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn labels() -> Vec<i64> {
        (0..1000).map(|i| (i * 7 % 10) as i64).collect()
    }

    #[test]
    fn random_split_invariants() {
        let _rng = crate::rng_lock();
        let s = make(&labels(), Scenario::Random { fraction: 0.1 }, 3, 1).unwrap();
        assert_eq!(s.forget.len(), 100);
        assert_eq!(s.remain.len(), 900);
        assert_eq!(s.sample.len(), 100);
        let f: HashSet<_> = s.forget.iter().collect();
        let r: HashSet<_> = s.remain.iter().collect();
        assert!(f.is_disjoint(&r));
        assert!(s.sample.iter().all(|i| r.contains(i)));
        assert_eq!(
            s,
            make(&labels(), Scenario::Random { fraction: 0.1 }, 3, 1).unwrap()
        );
        assert_ne!(
            s.forget,
            make(&labels(), Scenario::Random { fraction: 0.1 }, 4, 1)
                .unwrap()
                .forget
        );
    }

    #[test]
    fn class_and_per_class_content() {
        let _rng = crate::rng_lock();
        let l = labels();
        let s = make(&l, Scenario::Class { classes: vec![0] }, 0, 5).unwrap();
        assert!(s.forget.iter().all(|&i| l[i as usize] == 0));
        assert!(s.remain.iter().all(|&i| l[i as usize] != 0));
        assert_eq!(s.forget.len(), 100);
        assert_eq!(s.sample.len(), 500, "repeat 5 draws |Df| x 5 from Dr");
        assert!(make(&l, Scenario::Class { classes: vec![0] }, 0, 10).is_err());
        let p = make(
            &l,
            Scenario::PerClass {
                proportions: BTreeMap::from([(2, 0.5)]),
            },
            0,
            1,
        )
        .unwrap();
        assert_eq!(p.forget.len(), 50);
        assert!(p.forget.iter().all(|&i| l[i as usize] == 2));
        assert!(make(&l, Scenario::Class { classes: vec![11] }, 0, 1).is_err());
    }
}
