//! Membership-inference attacks.
//!
//! - [`mia_camu`]: the reference's attack. Features are the softmax outputs sorted ascending; a
//!   gradient-boosted tree classifier (gbdt crate: 100 trees, depth 6, shrinkage 0.3, like
//!   XGBoost's defaults) learns members (Ds, label 1) against non-members (the first test samples,
//!   label 0), and is scored by its accuracy on Df (label 1) plus as many further, unseen test
//!   samples (label 0).
//! - [`mia_loss`]: the loss-based attack of recent work: per-sample cross-entropy on Df against as
//!   many test samples of the same classes, logistic regression, k-fold cross-validated accuracy.

use gbdt::config::Config;
use gbdt::decision_tree::{Data, DataVec};
use gbdt::gradient_boost::GBDT;
use tch::{Kind, Tensor};

/// Softmax of each row, sorted ascending: the reference's attack features.
pub fn sorted_softmax(logits: &Tensor) -> Vec<Vec<f32>> {
    let p = logits.softmax(1, Kind::Float).sort(1, false).0;
    let k = p.size()[1] as usize;
    let flat = Vec::<f32>::try_from(p.contiguous().view([-1])).unwrap_or_default();
    flat.chunks(k.max(1)).map(|c| c.to_vec()).collect()
}

fn to_data(rows: &[Vec<f32>], label: f32) -> DataVec {
    rows.iter()
        .map(|r| Data::new_training_data(r.clone(), 1.0, label, None))
        .collect()
}

/// Result of the reference attack.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MiaResult {
    /// Accuracy on Df (members) + unseen test (non-members).
    pub accuracy: f64,
    /// Fraction of Df the attacker calls a member.
    pub forget_member_rate: f64,
    pub n_train: usize,
    pub n_eval: usize,
}

/// The reference MIA. `shadow_in`: Ds features; `test`: test-set features in order; `forget`: Df
/// features. Uses `n_attack` samples of each side for training.
pub fn mia_camu(
    shadow_in: &[Vec<f32>],
    test: &[Vec<f32>],
    forget: &[Vec<f32>],
    n_attack: usize,
    seed: u64,
) -> Result<MiaResult, String> {
    let finite = |rows: &[Vec<f32>]| rows.iter().flatten().all(|v| v.is_finite());
    if !finite(shadow_in) || !finite(test) || !finite(forget) {
        return Err("the model's outputs are not finite".into());
    }
    let n_in = n_attack.min(shadow_in.len());
    let n_out = n_attack.min(test.len());
    if n_in == 0 || n_out == 0 || forget.is_empty() {
        return Err("MIA needs non-empty Ds, test and Df sets".into());
    }
    let features = shadow_in[0].len();
    let mut train = to_data(&shadow_in[..n_in], 1.0);
    train.extend(to_data(&test[..n_out], -1.0));
    let mut cfg = Config::new();
    cfg.set_feature_size(features);
    cfg.set_max_depth(6);
    cfg.set_iterations(100);
    cfg.set_shrinkage(0.3);
    cfg.set_loss("LogLikelyhood");
    cfg.set_min_leaf_size(1);
    cfg.set_data_sample_ratio(1.0);
    cfg.set_feature_sample_ratio(1.0);
    cfg.set_training_optimization_level(2);
    let _ = seed; // the gbdt crate's training is deterministic with full sampling
    let mut model = GBDT::new(&cfg);
    model.fit(&mut train);
    // Non-members for scoring: test samples after those used for training.
    let unseen = &test[n_out..];
    let n_neg = forget.len().min(unseen.len());
    let mut eval = to_data(forget, 1.0);
    eval.extend(to_data(&unseen[..n_neg], -1.0));
    let pred = model.predict(&eval);
    let mut correct = 0usize;
    let mut forget_members = 0usize;
    for (i, (p, d)) in pred.iter().zip(&eval).enumerate() {
        let member = *p >= 0.5;
        if member == (d.label > 0.0) {
            correct += 1;
        }
        if i < forget.len() && member {
            forget_members += 1;
        }
    }
    Ok(MiaResult {
        accuracy: correct as f64 / eval.len() as f64,
        forget_member_rate: forget_members as f64 / forget.len() as f64,
        n_train: train.len(),
        n_eval: eval.len(),
    })
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
) -> Result<f64, String> {
    let n = forget_losses.len().min(test_losses.len());
    if n < folds || folds < 2 {
        return Err(format!(
            "loss MIA needs at least {folds} samples per side, have {n}"
        ));
    }
    let mut xs: Vec<(f64, f64)> = forget_losses[..n]
        .iter()
        .map(|&l| (l, 1.0))
        .chain(test_losses[..n].iter().map(|&l| (l, 0.0)))
        .collect();
    // Deterministic shuffle (splitmix64), so folds mix both sides.
    let mut state = seed.wrapping_add(0x9E3779B97F4A7C15);
    for i in (1..xs.len()).rev() {
        state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        xs.swap(i, (z % (i as u64 + 1)) as usize);
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
                .contains("not finite")
        );
    }

    #[test]
    fn gbdt_mia_detects_confidence_gap() {
        // Members: confident (max prob ~0.99); non-members: spread (max ~0.5).
        let conf = |c: f32, j: usize| {
            let mut v = vec![(1.0 - c) / 9.0 + j as f32 * 1e-5; 10];
            v[9] = c;
            v
        };
        let members: Vec<Vec<f32>> = (0..300).map(|j| conf(0.99, j)).collect();
        let test: Vec<Vec<f32>> = (0..600).map(|j| conf(0.5, j)).collect();
        let forget_like_members: Vec<Vec<f32>> = (0..100).map(|j| conf(0.98, j)).collect();
        let r = mia_camu(&members, &test, &forget_like_members, 300, 0).unwrap();
        assert!(r.accuracy > 0.95, "{r:?}");
        assert!(r.forget_member_rate > 0.95);
        // A forget set that looks like test data is called non-member.
        let forget_like_test: Vec<Vec<f32>> = (0..100).map(|j| conf(0.5, j + 7)).collect();
        let r = mia_camu(&members, &test, &forget_like_test, 300, 0).unwrap();
        assert!(r.forget_member_rate < 0.05, "{r:?}");
    }
}
