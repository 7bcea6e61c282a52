//! `audit`: the outputs of N retrained and N unlearned models on the forget set, turned into
//! per-example epsilons, F, the final score and U-LiRA (`camu_lab::audit`). The declaration is
//! `camu_lab::kinds::audit`.

use crate::MlError;
use crate::ml::{accuracy, idx_tensor, infer};
use crate::models::Model;
use camu_core::stage::io::{input_key, read_json, write_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::audit;
use camu_lab::kinds::audit::{AuditParams, natural_cmp};
use camu_lab::protocol::EvalOn;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

pub struct AuditRun;

/// One run's outputs: its confidence on each audited forget example, and its accuracies.
struct RunOutputs {
    stage: String,
    key: String,
    confidences: Vec<f64>,
    ra: f64,
    ta: f64,
}

impl Runner for AuditRun {
    fn kind(&self) -> &'static str {
        "audit"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let rt = super::Runtime::start(job)?;
        let p = AuditParams::read(&job.params)?;
        let data = rt.dataset()?;
        let split = rt.split()?;
        let fam = data.meta.family;
        let forget: Vec<i64> = match p.examples {
            Some(k) => split.forget.iter().copied().take(k).collect(),
            None => split.forget.clone(),
        };
        if forget.is_empty() {
            return Err(MlError::Audit(
                "the split's forget set is empty: there is nothing to audit".into(),
            )
            .into());
        }
        // The test part the evaluations report on (all of it unless the split holds some out).
        let (t_x, t_y) = match split
            .test_indices(EvalOn::Test, data.meta.n_test)
            .map_err(MlError::from)?
        {
            Some(idx) => {
                let t = idx_tensor(&idx);
                (
                    data.test_x.index_select(0, &t),
                    data.test_y.index_select(0, &t),
                )
            }
            None => (data.test_x.shallow_clone(), data.test_y.shallow_clone()),
        };
        let (f_idx, r_idx) = (idx_tensor(&forget), idx_tensor(&split.remain));
        let f_x = data.train_x.index_select(0, &f_idx);
        let f_y: Vec<i64> =
            Vec::<i64>::try_from(&data.train_y.index_select(0, &f_idx)).map_err(MlError::from)?;
        let (r_x, r_y) = (
            data.train_x.index_select(0, &r_idx),
            data.train_y.index_select(0, &r_idx),
        );
        let batch = p.batch_size as i64;
        let outputs = |base: &str| -> Result<Vec<RunOutputs>, StageError> {
            let mut dirs: Vec<(&String, &PathBuf)> = job
                .inputs_named(base)
                .into_iter()
                .map(|(name, input)| (name, &input.dir))
                .filter(|(_, dir)| dir.join("model.safetensors").exists())
                .collect();
            dirs.sort_by(|a, b| natural_cmp(a.0, b.0));
            if let Some(n) = p.runs.filter(|&n| n > dirs.len()) {
                return Err(MlError::Audit(format!(
                    "`runs: {n}`, but only {} input(s) of `{base}` hold a model",
                    dirs.len()
                ))
                .into());
            }
            dirs.truncate(p.runs.unwrap_or(usize::MAX));
            let mut runs = Vec::with_capacity(dirs.len());
            for (i, (name, dir)) in dirs.iter().enumerate() {
                tracing::info!("{base}: run {} of {} ({name})", i + 1, dirs.len());
                let model = Model::load(dir, rt.device).map_err(MlError::from)?;
                let logits = infer(&model, &f_x, fam, batch).0;
                let (r_logits, t_logits) = (
                    infer(&model, &r_x, fam, batch).0,
                    infer(&model, &t_x, fam, batch).0,
                );
                for (part, l) in [
                    ("forget", &logits),
                    ("retained", &r_logits),
                    ("test", &t_logits),
                ] {
                    if crate::metrics::nonfinite_rows(l) > 0 {
                        return Err(MlError::Audit(format!(
                            "{name}: the model has non-finite outputs on the {part} set; the audit needs finite outputs from every run"
                        )).into());
                    }
                }
                let rows: Vec<Vec<f32>> =
                    Vec::<Vec<f32>>::try_from(&logits).map_err(MlError::from)?;
                let confidences = rows
                    .iter()
                    .zip(&f_y)
                    .map(
                        |(l, &y)| match usize::try_from(y).ok().filter(|&y| y < l.len()) {
                            Some(y) => Ok(audit::logit_scaled_confidence(l, y)),
                            None => Err(MlError::Audit(format!(
                                "{name}: label {y} is not one of the model's {} classes",
                                l.len()
                            ))),
                        },
                    )
                    .collect::<Result<Vec<f64>, MlError>>()?;
                let ra = accuracy(&r_logits, &r_y);
                let ta = accuracy(&t_logits, &t_y);
                runs.push(RunOutputs {
                    stage: (*name).clone(),
                    key: input_key(dir).unwrap_or_default(),
                    confidences,
                    ra,
                    ta,
                });
            }
            Ok(runs)
        };
        let retrained = outputs(&p.retrained)?;
        let unlearned = outputs(&p.unlearned)?;
        let n = retrained.len();
        if n < camu_lab::kinds::audit::MIN_RUNS || n != unlearned.len() {
            return Err(MlError::Audit(format!(
                "{n} runs of `{}` and {} of `{}` hold a model among the inputs; the audit needs as many of each, at least {}",
                p.retrained,
                unlearned.len(),
                p.unlearned,
                camu_lab::kinds::audit::MIN_RUNS
            )).into());
        }
        let confs = |runs: &[RunOutputs]| -> Vec<Vec<f64>> {
            runs.iter().map(|r| r.confidences.clone()).collect()
        };
        let (rc, uc) = (confs(&retrained), confs(&unlearned));
        let t0 = std::time::Instant::now();
        let eps = audit::epsilons(&rc, &uc);
        let f = audit::forgetting_quality(&eps, n);
        let ulira = audit::ulira(&rc, &uc);
        tracing::info!(
            "epsilons of {} examples in {:.1}s: F {f:.4}",
            eps.len(),
            t0.elapsed().as_secs_f64()
        );
        let mean = |runs: &[RunOutputs], get: fn(&RunOutputs) -> f64| {
            runs.iter().map(get).sum::<f64>() / runs.len() as f64
        };
        let (ra_u, ra_r) = (mean(&unlearned, |r| r.ra), mean(&retrained, |r| r.ra));
        let (ta_u, ta_r) = (mean(&unlearned, |r| r.ta), mean(&retrained, |r| r.ta));
        // Every unlearned run is one method with one setting: the label is theirs.
        let label = |r: &RunOutputs| -> Map<String, Value> {
            job.inputs
                .get(&r.stage)
                .and_then(|input| read_json(&input.dir.join("metrics.json")).ok())
                .unwrap_or_default()
        };
        let produced = label(&unlearned[0]);
        let what = |m: &Map<String, Value>| (m.get("method").cloned(), m.get("selected").cloned());
        if let Some(other) = unlearned[1..]
            .iter()
            .find(|r| what(&label(r)) != what(&produced))
        {
            return Err(MlError::Audit(format!(
                "`{}` and `{}` ran different methods or settings; an audit compares the runs of one (bind `method` in the audit's matrix too)",
                unlearned[0].stage, other.stage
            )).into());
        }
        let runs_of = |runs: &[RunOutputs]| -> Vec<Value> {
            runs.iter()
                .map(|r| json!({"stage": r.stage, "key": r.key, "acc_remain_train": r.ra, "acc_test": r.ta}))
                .collect()
        };
        let mut record = json!({
            // As `evaluate` names a model: its method, else retrain (trained on Dr) or original.
            "method": super::model_label(&produced),
            "unlearned_stage": p.unlearned,
            "retrained_stage": p.retrained,
            "scenario": split.scenario,
            "seed": split.seed,
            "dataset": data.meta.name,
            "runs": n,
            "examples": eps.len(),
            "forget_size": split.forget.len(),
            "forgetting_quality": f,
            "forgetting_quality_ci95": audit::forgetting_quality_ci(&eps, n, 1000, 0),
            "final_score": audit::final_score(f, ra_u, ra_r, ta_u, ta_r),
            "epsilon_mean": eps.iter().sum::<f64>() / eps.len().max(1) as f64,
            "epsilon_capped": eps.iter().filter(|&&e| e >= audit::EPSILON_CAP).count(),
            "ulira_accuracy": ulira.as_ref().map(|u| u.accuracy),
            "ulira_auc": ulira.as_ref().map(|u| u.auc),
            "ulira_guesses": ulira.as_ref().map(|u| u.guesses),
            "ulira_tpr_at_fpr_1e2": ulira.as_ref().map(|u| u.tpr_at_fpr_1e2),
            "ulira_tpr_at_fpr_1e3": ulira.as_ref().map(|u| u.tpr_at_fpr_1e3),
            "acc_remain_train_unlearned": ra_u,
            "acc_remain_train_retrained": ra_r,
            "acc_test_unlearned": ta_u,
            "acc_test_retrained": ta_r,
            "provenance": {
                "audit": {"stage": job.stage, "key": job.key,
                          "version": camu_core::spec::Kind::version(&camu_lab::kinds::audit::Audit, &job.params)},
                "retrained": runs_of(&retrained),
                "unlearned": runs_of(&unlearned),
            },
        });
        // The distribution of the epsilons in the bins F scores (width 0.5), and the examples
        // hardest to forget, so the report needs only this record.
        let top = 2.0 * ((n - 1) as f64).ln().ceil();
        let mut counts = vec![0usize; top.max(0.0) as usize + 1];
        for &e in &eps {
            let bin = ((2.0 * e).floor().max(0.0) as usize).min(counts.len() - 1);
            counts[bin] += 1;
        }
        let mut order: Vec<usize> = (0..eps.len()).collect();
        order.sort_by(|&a, &b| eps[b].total_cmp(&eps[a]).then(forget[a].cmp(&forget[b])));
        let hardest: Vec<Value> = order
            .iter()
            .take(10)
            .map(|&i| json!({"index": forget[i], "epsilon": eps[i]}))
            .collect();
        record["epsilon_bins"] = json!({"width": 0.5, "counts": counts,
            "note": "the last count holds every epsilon beyond the scored bins, the cap of 50 included"});
        record["hardest"] = json!(hardest);
        let per_example: Vec<Value> = forget
            .iter()
            .zip(&eps)
            .map(
                |(&i, &e)| json!({"index": i, "epsilon": e, "points": audit::example_points(e, n)}),
            )
            .collect();
        write_json(job, "epsilons.json", &per_example)?;
        let record = match record {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        };
        write_metrics(job, &record)
    }
}
