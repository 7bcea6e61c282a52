//! Evaluation metrics of an unlearned model (baselines.md, camu-method.md).

pub mod cka;
pub mod mia;
pub mod relearn;
pub mod xgb;

use crate::data::Dataset;
use crate::data::split::Split;
use crate::ml::{accuracy, idx_tensor, infer};
use crate::models::Model;
use serde_json::{Map, Value, json};
use tch::{Kind, Tensor};

/// Mean KL(p || q) over rows of probability matrices.
pub fn kl_mean(p: &Tensor, q: &Tensor) -> f64 {
    if p.size()[0] == 0 {
        return f64::NAN;
    }
    let eps = 1e-12;
    let lp = p.clamp_min(eps).log();
    let lq = q.clamp_min(eps).log();
    (p * (lp - lq))
        .sum_dim_intlist(1, false, Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}

/// Mean Jensen-Shannon divergence (natural log) over rows.
pub fn js_mean(p: &Tensor, q: &Tensor) -> f64 {
    let m = (p + q) / 2.0;
    0.5 * kl_mean(p, &m) + 0.5 * kl_mean(q, &m)
}

/// Mean L2 distance between rows.
pub fn l2_mean(p: &Tensor, q: &Tensor) -> f64 {
    if p.size()[0] == 0 {
        return f64::NAN;
    }
    (p - q)
        .square()
        .sum_dim_intlist(1, false, Kind::Double)
        .sqrt()
        .mean(Kind::Double)
        .double_value(&[])
}

/// Per-sample cross-entropy.
fn losses(logits: &Tensor, y: &Tensor) -> Vec<f64> {
    let l = logits
        .log_softmax(1, Kind::Float)
        .gather(1, &y.unsqueeze(1), false)
        .neg()
        .squeeze_dim(1);
    Vec::<f64>::try_from(l.to_kind(Kind::Double)).unwrap_or_default()
}

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    pub mia: bool,
    /// Samples per side used to train the reference attack (reference: ~4,000).
    pub mia_samples: usize,
    pub batch: i64,
    pub seed: u64,
    /// Where to write the reference attack's fit and evaluation sets (`mia_fit.csv`,
    /// `mia_eval.csv`) for a cross-check with another learner; none: not written.
    pub mia_export: Option<std::path::PathBuf>,
    /// Record the accuracy per class on the test set, Df and Dr.
    pub per_class: bool,
    /// Record each layer's linear CKA to the reference on this many test images (the first).
    pub cka_samples: Option<usize>,
}

/// Rows of a logit matrix with any non-finite entry.
pub fn nonfinite_rows(logits: &Tensor) -> i64 {
    if logits.numel() == 0 {
        return 0;
    }
    logits
        .isfinite()
        .all_dim(1, false)
        .logical_not()
        .sum(Kind::Int64)
        .int64_value(&[])
}

fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Every metric of `model` on a split; divergences need the retrained `reference`.
pub fn evaluate(
    model: &Model,
    reference: Option<&Model>,
    data: &Dataset,
    split: &Split,
    opts: &EvalOptions,
) -> Result<Map<String, Value>, crate::MlError> {
    let fam = data.meta.family;
    let mut m = Map::new();
    let f_idx = idx_tensor(&split.forget);
    let r_idx = idx_tensor(&split.remain);
    let s_idx = idx_tensor(&split.sample);
    let train_logits = infer(model, &data.train_x, fam, opts.batch).0;
    let (test_logits, _) = infer(model, &data.test_x, fam, opts.batch);
    // A model with non-finite outputs has no accuracy (the argmax of a NaN row is 0, which would
    // read as "predicts class 0"): record it as diverged, every output metric null.
    let (bad_train, bad_test) = (nonfinite_rows(&train_logits), nonfinite_rows(&test_logits));
    m.insert("diverged".into(), json!(bad_train + bad_test > 0));
    if bad_train + bad_test > 0 {
        m.insert(
            "nonfinite_outputs".into(),
            json!({"train": bad_train, "test": bad_test}),
        );
        m.insert(
            "diverged_reason".into(),
            json!(format!(
                "non-finite outputs on {bad_train} of {} training and {bad_test} of {} test samples",
                data.meta.n_train,
                test_logits.size()[0]
            )),
        );
        let class = !split.scenario.forgotten_classes().is_empty();
        for k in camu_lab::metrics::output_metrics() {
            if k.starts_with("acc_test_") && !class {
                continue;
            }
            if k.starts_with("mia") && !opts.mia {
                continue;
            }
            if (k.contains("to_retrain") || k == "activation_distance") && reference.is_none() {
                continue;
            }
            m.insert(k.to_string(), Value::Null);
        }
        return Ok(m);
    }
    let y_f = data.train_y.index_select(0, &f_idx);
    let lf = train_logits.index_select(0, &f_idx);
    m.insert(
        "acc_remain_train".into(),
        num(accuracy(
            &train_logits.index_select(0, &r_idx),
            &data.train_y.index_select(0, &r_idx),
        )),
    );
    m.insert("acc_forget_train".into(), num(accuracy(&lf, &y_f)));
    m.insert("acc_test".into(), num(accuracy(&test_logits, &data.test_y)));
    if opts.per_class {
        let classes = usize::try_from(data.meta.classes).unwrap_or(0);
        let ints = |t: &Tensor| Vec::<i64>::try_from(t).unwrap_or_default();
        for ((key, _), (logits, labels)) in camu_lab::metrics::PER_CLASS.iter().zip([
            (test_logits.shallow_clone(), data.test_y.shallow_clone()),
            (lf.shallow_clone(), y_f.shallow_clone()),
            (
                train_logits.index_select(0, &r_idx),
                data.train_y.index_select(0, &r_idx),
            ),
        ]) {
            let acc = camu_lab::metrics::per_class_accuracy(
                &ints(&logits.argmax(1, false)),
                &ints(&labels),
                classes,
            );
            m.insert((*key).into(), json!(acc));
        }
    }
    let forgotten = split.scenario.forgotten_classes();
    let test_y: Vec<i64> = Vec::<i64>::try_from(&data.test_y).unwrap_or_default();
    if !forgotten.is_empty() {
        let (fi, ri): (Vec<i64>, Vec<i64>) =
            (0..test_y.len() as i64).partition(|&i| forgotten.contains(&test_y[i as usize]));
        let acc_on = |idx: &[i64]| {
            let t = idx_tensor(idx);
            accuracy(
                &test_logits.index_select(0, &t),
                &data.test_y.index_select(0, &t),
            )
        };
        m.insert("acc_test_forget".into(), num(acc_on(&fi)));
        m.insert("acc_test_remain".into(), num(acc_on(&ri)));
    }
    if opts.mia {
        let feats_s = mia::sorted_softmax(&train_logits.index_select(0, &s_idx));
        let feats_t = mia::sorted_softmax(&test_logits);
        let feats_f = mia::sorted_softmax(&lf);
        let attack = mia::attack_data(&feats_s, &feats_t, &feats_f, opts.mia_samples, opts.seed);
        if let (Ok(d), Some(dir)) = (&attack, &opts.mia_export) {
            for (name, rows) in [("mia_fit.csv", &d.fit), ("mia_eval.csv", &d.eval)] {
                let p = dir.join(name);
                std::fs::write(&p, mia::to_csv(rows)).map_err(|source| {
                    camu_core::stage::StageError::Io {
                        action: "write",
                        path: p.clone(),
                        source,
                    }
                })?;
            }
        }
        let reference_sets = attack.as_ref().map(|d| d.reference_sets).unwrap_or(true);
        match attack.and_then(|d| mia::score(&d)) {
            Ok(r) => {
                m.insert("mia_camu".into(), num(r.accuracy));
                m.insert(
                    "mia_camu_forget_member_rate".into(),
                    num(r.forget_member_rate),
                );
                m.insert("mia_camu_n_fit".into(), r.n_fit.into());
                m.insert("mia_camu_n_eval".into(), r.n_eval.into());
                if !reference_sets {
                    tracing::info!(
                        test = feats_t.len(),
                        fit = r.n_fit,
                        scored = r.n_eval,
                        "fewer test samples than the reference attack uses: balanced sets"
                    );
                }
            }
            Err(e) => {
                m.insert("mia_camu_error".into(), Value::String(e.to_string()));
            }
        }
        // Loss attack: Df against as many test samples of the same classes as available.
        let lf_losses = losses(&lf, &y_f);
        let yf: Vec<i64> = Vec::<i64>::try_from(&y_f).unwrap_or_default();
        let test_losses_all = losses(&test_logits, &data.test_y);
        let mut by_class: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
        for (i, &c) in test_y.iter().enumerate() {
            by_class.entry(c).or_default().push(test_losses_all[i]);
        }
        let mut members = Vec::new();
        let mut non = Vec::new();
        let mut used: std::collections::BTreeMap<i64, usize> = Default::default();
        for (i, &c) in yf.iter().enumerate() {
            let u = used.entry(c).or_default();
            if let Some(l) = by_class.get(&c).and_then(|v| v.get(*u)) {
                members.push(lf_losses[i]);
                non.push(*l);
                *u += 1;
            }
        }
        if let Ok(acc) = mia::mia_loss(&members, &non, 5, opts.seed) {
            m.insert("mia_loss".into(), num(acc));
        }
    }
    if let Some(reference) = reference {
        let rf = infer(
            reference,
            &data.train_x.index_select(0, &f_idx),
            fam,
            opts.batch,
        )
        .0;
        let rt = infer(reference, &data.test_x, fam, opts.batch).0;
        let (pf, qf) = (lf.softmax(1, Kind::Float), rf.softmax(1, Kind::Float));
        let (pt, qt) = (
            test_logits.softmax(1, Kind::Float),
            rt.softmax(1, Kind::Float),
        );
        m.insert("kl_to_retrain_forget".into(), num(kl_mean(&qf, &pf)));
        m.insert("kl_to_retrain_test".into(), num(kl_mean(&qt, &pt)));
        m.insert("js_to_retrain_forget".into(), num(js_mean(&pf, &qf)));
        m.insert("js_to_retrain_test".into(), num(js_mean(&pt, &qt)));
        m.insert("activation_distance".into(), num(l2_mean(&pf, &qf)));
        if let Some(n) = opts.cka_samples {
            let n = (n as i64).min(data.test_x.size()[0]);
            let layers = cka::layer_cka(
                model,
                reference,
                &data.test_x.narrow(0, 0, n),
                fam,
                opts.batch,
            );
            m.insert(
                "cka_to_retrain".into(),
                Value::Array(
                    layers
                        .into_iter()
                        .map(|(layer, v)| json!({"layer": layer, "cka": num(v)}))
                        .collect(),
                ),
            );
            m.insert("cka_samples".into(), json!(n));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergences_on_known_distributions() {
        let p = Tensor::from_slice(&[0.5f64, 0.5, 1.0, 0.0]).view([2, 2]);
        assert!(kl_mean(&p, &p).abs() < 1e-9);
        assert!(js_mean(&p, &p).abs() < 1e-9);
        let q = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0]).view([2, 2]);
        // JS of disjoint one-hots is ln 2; row 1 is (0.5,0.5) vs (1,0).
        let js_row0 = 0.5 * (0.5 * (0.5f64 / 0.75).ln() + 0.5 * (0.5f64 / 0.25).ln())
            + 0.5 * (1.0f64 / 0.75).ln();
        let want = (js_row0 + 2f64.ln()) / 2.0;
        assert!(
            (js_mean(&p, &q) - want).abs() < 1e-6,
            "{} vs {want}",
            js_mean(&p, &q)
        );
        // L2: row0 sqrt(0.5), row1 sqrt(2).
        let want = (0.5f64.sqrt() + 2f64.sqrt()) / 2.0;
        assert!((l2_mean(&p, &q) - want).abs() < 1e-9);
    }
}
