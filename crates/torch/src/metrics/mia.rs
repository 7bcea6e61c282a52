//! Membership-inference attacks.
//!
//! - [`mia_camu`]: the reference's attack (ShaofeiShen768/CaMU, `CaMU/train.py`:
//!   `train_attack_model` and `attack`). Features are the softmax outputs sorted ascending. The
//!   attacker's data is 4,000 samples of Ds (members, 1) and the first 4,000 test samples
//!   (non-members, 0); `train_test_split(test_size=0.01, shuffle=True)` keeps 99% of it for the
//!   fit and never uses the other 1%. The learner is `XGBClassifier(n_estimators=100,
//!   objective='binary:logistic')`, reproduced by [`super::xgb`]. The score is the accuracy of
//!   `predict` on Df (members) plus as many further, unseen test samples (non-members).
//!   That recipe needs `n_attack + |Df|` test samples. With fewer (a test set cut down by a
//!   split's validation part, or the validation part itself) the reference would fit on every
//!   test sample, 4,000 members against fewer non-members, and score Df against few or no unseen
//!   samples, so its accuracy would be the member rate on an unbalanced set. There the attack stays
//!   balanced instead: `n = min(n_attack, |test| / 2)` per side for the fit, and a seeded sample of
//!   `m = min(|Df|, |test| - n)` Df rows against the next `m` test rows. With enough test samples
//!   the reference's sets are used unchanged.
//! - [`mia_loss`]: the loss-based attack of recent work: per-sample cross-entropy on Df against as
//!   many test samples of the same classes, logistic regression, k-fold cross-validated accuracy.

use super::xgb::{Booster, XgbParams};
use tch::{Kind, Tensor};

/// Softmax of each row, sorted ascending: the reference's attack features.
pub fn sorted_softmax(logits: &Tensor) -> Vec<Vec<f32>> {
    let p = logits.softmax(1, Kind::Float).sort(1, false).0;
    let k = p.size()[1] as usize;
    let flat = Vec::<f32>::try_from(p.contiguous().view([-1])).unwrap_or_default();
    flat.chunks(k.max(1)).map(|c| c.to_vec()).collect()
}

/// Result of the reference attack.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MiaResult {
    /// Accuracy on Df (members) + unseen test (non-members).
    pub accuracy: f64,
    /// Fraction of Df the attacker calls a member.
    pub forget_member_rate: f64,
    /// Samples the learner was fitted on (99% of the attack data).
    pub n_fit: usize,
    /// Samples scored (Df plus as many unseen test samples).
    pub n_eval: usize,
}

/// The attack's data: the rows the learner is fitted on and the rows it is scored on, each
/// with its membership label.
#[derive(Debug, Clone, Default)]
pub struct AttackData {
    pub fit: Vec<(Vec<f32>, bool)>,
    /// Df rows first (`n_forget` of them), then the unseen test rows.
    pub eval: Vec<(Vec<f32>, bool)>,
    pub n_forget: usize,
    /// Whether the sets are the reference's (enough test samples) or the balanced fallback.
    pub reference_sets: bool,
}

/// splitmix64: a small, seeded, platform-independent generator for the fit split.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E3779B97F4A7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// Builds the reference attack's fit and evaluation sets. `shadow_in`: Ds features; `test`:
/// test-set features in order; `forget`: Df features; `n_attack` samples of each side.
pub fn attack_data(
    shadow_in: &[Vec<f32>],
    test: &[Vec<f32>],
    forget: &[Vec<f32>],
    n_attack: usize,
    seed: u64,
) -> Result<AttackData, crate::MlError> {
    let finite = |rows: &[Vec<f32>]| rows.iter().flatten().all(|v| v.is_finite());
    if !finite(shadow_in) || !finite(test) || !finite(forget) {
        return Err(crate::MlError::Metric(
            "the model's outputs are not finite".into(),
        ));
    }
    let reference_sets = test.len() >= n_attack + forget.len();
    let (n_in, n_out) = if reference_sets {
        (n_attack.min(shadow_in.len()), n_attack)
    } else {
        let n = n_attack.min(shadow_in.len()).min(test.len() / 2);
        (n, n)
    };
    if n_in == 0 || n_out == 0 || forget.is_empty() {
        return Err(crate::MlError::Metric(format!(
            "MIA needs non-empty Ds, Df and at least 2 test samples (Ds {}, test {}, Df {})",
            shadow_in.len(),
            test.len(),
            forget.len()
        )));
    }
    let mut all: Vec<(Vec<f32>, bool)> = shadow_in[..n_in]
        .iter()
        .map(|r| (r.clone(), true))
        .chain(test[..n_out].iter().map(|r| (r.clone(), false)))
        .collect();
    // train_test_split(test_size=0.01, shuffle=True): a seeded shuffle, 1% (rounded up) left out.
    let mut state = seed ^ 0x4D49_415F_4649_5421;
    for i in (1..all.len()).rev() {
        all.swap(i, (splitmix(&mut state) % (i as u64 + 1)) as usize);
    }
    let held_out = all.len().div_ceil(100);
    all.truncate(all.len() - held_out);
    let unseen = &test[n_out..];
    let n_neg = forget.len().min(unseen.len());
    let members: Vec<&Vec<f32>> = if reference_sets {
        forget.iter().collect()
    } else {
        // As many Df rows as unseen test rows, a seeded sample in Df's order.
        let mut idx: Vec<usize> = (0..forget.len()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, (splitmix(&mut state) % (i as u64 + 1)) as usize);
        }
        idx.truncate(n_neg);
        idx.sort_unstable();
        idx.iter().map(|&i| &forget[i]).collect()
    };
    let n_forget = members.len();
    let eval = members
        .into_iter()
        .map(|r| (r.clone(), true))
        .chain(unseen[..n_neg].iter().map(|r| (r.clone(), false)))
        .collect();
    Ok(AttackData {
        fit: all,
        eval,
        n_forget,
        reference_sets,
    })
}

/// The reference MIA on the sets of [`attack_data`].
pub fn mia_camu(
    shadow_in: &[Vec<f32>],
    test: &[Vec<f32>],
    forget: &[Vec<f32>],
    n_attack: usize,
    seed: u64,
) -> Result<MiaResult, crate::MlError> {
    let d = attack_data(shadow_in, test, forget, n_attack, seed)?;
    score(&d)
}

/// Fits the learner on `d.fit` and scores it on `d.eval`, whose first `d.n_forget` rows are Df.
pub fn score(d: &AttackData) -> Result<MiaResult, crate::MlError> {
    let n_forget = d.n_forget;
    let rows: Vec<Vec<f32>> = d.fit.iter().map(|(r, _)| r.clone()).collect();
    let labels: Vec<bool> = d.fit.iter().map(|(_, l)| *l).collect();
    let model = Booster::fit(&rows, &labels, &XgbParams::default())?;
    let mut correct = 0usize;
    let mut forget_members = 0usize;
    for (i, (r, label)) in d.eval.iter().enumerate() {
        let member = model.predict(r);
        correct += usize::from(member == *label);
        if i < n_forget && member {
            forget_members += 1;
        }
    }
    Ok(MiaResult {
        accuracy: correct as f64 / d.eval.len().max(1) as f64,
        forget_member_rate: forget_members as f64 / n_forget.max(1) as f64,
        n_fit: d.fit.len(),
        n_eval: d.eval.len(),
    })
}

/// The attack's sets as CSV (`label,f0,f1,...`), for cross-checking the learner elsewhere.
/// Values are written in Rust's shortest round-trip form, so they parse back to the same f32.
pub fn to_csv(rows: &[(Vec<f32>, bool)]) -> String {
    let mut out = String::new();
    if let Some((r, _)) = rows.first() {
        out.push_str("label");
        for k in 0..r.len() {
            out.push_str(&format!(",f{k}"));
        }
        out.push('\n');
    }
    for (r, l) in rows {
        out.push_str(if *l { "1" } else { "0" });
        for v in r {
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    out
}

/// Logistic regression on one standardised feature, by Newton's method (exact for 2 params).
fn fit_logistic(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (mut w, mut b) = (0.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut gw, mut gb, mut hww, mut hwb, mut hbb) = (0.0, 0.0, 1e-6, 0.0, 1e-6);
        for (&xi, &yi) in x.iter().zip(y) {
            let p = 1.0 / (1.0 + (-(w * xi + b)).exp());
            let r = p - yi;
            gw += r * xi;
            gb += r;
            let s = p * (1.0 - p);
            hww += s * xi * xi;
            hwb += s * xi;
            hbb += s;
        }
        // Small ridge keeps the step finite on separable data.
        let (hww, hbb) = (hww + 1e-3, hbb + 1e-3);
        let det = hww * hbb - hwb * hwb;
        if det.abs() < 1e-12 {
            break;
        }
        let dw = (hbb * gw - hwb * gb) / det;
        let db = (hww * gb - hwb * gw) / det;
        w -= dw;
        b -= db;
        if dw.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    (w, b)
}

/// The loss-based attack: cross-validated accuracy of logistic regression telling Df losses
/// (members, 1) from test losses (non-members, 0). Folds interleave the shuffled samples.
pub fn mia_loss(
    forget_losses: &[f64],
    test_losses: &[f64],
    folds: usize,
    seed: u64,
) -> Result<f64, crate::MlError> {
    let n = forget_losses.len().min(test_losses.len());
    if n < folds || folds < 2 {
        return Err(crate::MlError::Metric(format!(
            "loss MIA needs at least {folds} samples per side, have {n}"
        )));
    }
    let mut xs: Vec<(f64, f64)> = forget_losses[..n]
        .iter()
        .map(|&l| (l, 1.0))
        .chain(test_losses[..n].iter().map(|&l| (l, 0.0)))
        .collect();
    // Deterministic shuffle, so folds mix both sides.
    let mut state = seed.wrapping_add(0x9E3779B97F4A7C15);
    for i in (1..xs.len()).rev() {
        xs.swap(i, (splitmix(&mut state) % (i as u64 + 1)) as usize);
    }
    let mut correct = 0usize;
    for f in 0..folds {
        let (train, test): (Vec<_>, Vec<_>) =
            xs.iter().enumerate().partition(|(i, _)| i % folds != f);
        let xt: Vec<f64> = train.iter().map(|(_, (x, _))| *x).collect();
        let mean = xt.iter().sum::<f64>() / xt.len() as f64;
        let sd = (xt.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xt.len() as f64)
            .sqrt()
            .max(1e-12);
        let z: Vec<f64> = xt.iter().map(|x| (x - mean) / sd).collect();
        let yt: Vec<f64> = train.iter().map(|(_, (_, y))| *y).collect();
        let (w, b) = fit_logistic(&z, &yt);
        for (_, (x, y)) in test {
            let p = 1.0 / (1.0 + (-(w * (x - mean) / sd + b)).exp());
            if (p >= 0.5) == (*y > 0.5) {
                correct += 1;
            }
        }
    }
    Ok(correct as f64 / xs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_mia_separates_and_does_not_invent_signal() {
        // Members have low loss, non-members high: near-perfect attack.
        let members: Vec<f64> = (0..200).map(|i| 0.01 + i as f64 * 1e-4).collect();
        let others: Vec<f64> = (0..200).map(|i| 2.0 + i as f64 * 1e-3).collect();
        assert!(mia_loss(&members, &others, 5, 0).unwrap() > 0.99);
        // Identical distributions: chance level.
        let same: Vec<f64> = (0..400).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
        let acc = mia_loss(&same[..200], &same[200..], 5, 0).unwrap();
        assert!((acc - 0.5).abs() < 0.1, "{acc}");
    }

    #[test]
    fn non_finite_outputs_are_an_error_not_a_panic() {
        let good = vec![vec![0.1f32, 0.9]; 10];
        let bad = vec![vec![f32::NAN, 1.0]; 10];
        assert!(
            mia_camu(&good, &good, &bad, 5, 0)
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
    }

    /// A sorted-softmax-like row whose top probability is `c` (`j` keeps rows distinct).
    fn conf(c: f32, j: usize) -> Vec<f32> {
        let mut v = vec![(1.0 - c) / 9.0 + j as f32 * 1e-5; 10];
        v[9] = c;
        v
    }

    #[test]
    fn reference_mia_detects_confidence_gap() {
        // Members: confident (max prob ~0.99); non-members: spread (max ~0.5).
        let members: Vec<Vec<f32>> = (0..300).map(|j| conf(0.99, j)).collect();
        let test: Vec<Vec<f32>> = (0..600).map(|j| conf(0.5, j)).collect();
        let forget_like_members: Vec<Vec<f32>> = (0..100).map(|j| conf(0.98, j)).collect();
        let r = mia_camu(&members, &test, &forget_like_members, 300, 0).unwrap();
        assert_eq!(r.n_fit, 594, "99% of 600 rows, 1% rounded up left out");
        assert!(r.accuracy > 0.95, "{r:?}");
        assert!(r.forget_member_rate > 0.95);
        // A forget set that looks like test data is called non-member.
        let forget_like_test: Vec<Vec<f32>> = (0..100).map(|j| conf(0.5, j + 7)).collect();
        let r = mia_camu(&members, &test, &forget_like_test, 300, 0).unwrap();
        assert!(r.forget_member_rate < 0.05, "{r:?}");
        assert_eq!(r.n_eval, 200, "Df and as many unseen test rows");
    }

    #[test]
    fn a_small_test_set_gives_balanced_attack_sets() {
        let members: Vec<Vec<f32>> = (0..300).map(|j| conf(0.99, j)).collect();
        // 200 test rows: fewer than 300 for the fit plus 500 to score against Df.
        let test: Vec<Vec<f32>> = (0..200).map(|j| conf(0.5, j)).collect();
        let forget: Vec<Vec<f32>> = (0..500).map(|j| conf(0.5, j + 7)).collect();
        let d = attack_data(&members, &test, &forget, 300, 0).unwrap();
        assert!(!d.reference_sets);
        let count = |rows: &[(Vec<f32>, bool)], l: bool| rows.iter().filter(|r| r.1 == l).count();
        // 100 per side, 1% (2 rows) left out of the fit.
        assert_eq!(d.fit.len(), 198);
        assert!(count(&d.fit, true).abs_diff(count(&d.fit, false)) <= 2);
        assert_eq!(
            (d.n_forget, count(&d.eval, true), count(&d.eval, false)),
            (100, 100, 100)
        );
        // A Df that looks like test data: the attack is at chance, not at the member rate.
        let r = score(&d).unwrap();
        assert!(r.forget_member_rate < 0.05, "{r:?}");
        assert!((r.accuracy - 0.5).abs() < 0.05, "{r:?}");
        // With enough test rows the reference's sets are used as they are.
        let test: Vec<Vec<f32>> = (0..800).map(|j| conf(0.5, j)).collect();
        let d = attack_data(&members, &test, &forget, 300, 0).unwrap();
        assert!(d.reference_sets);
        assert_eq!((d.fit.len(), d.n_forget, d.eval.len()), (594, 500, 1000));
    }
}
