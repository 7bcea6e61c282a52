//! `evaluate`: every metric of one model on one split, next to the retrained model when given.

use crate::metrics::relearn::{RelearnOptions, relearn};
use crate::metrics::{EvalOptions, evaluate};
use camu_core::stage::io::{input_key, input_with, read_json, write_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use camu_lab::kinds::evaluate::EvaluateParams;
use serde_json::{Map, Value, json};

pub struct EvaluateRun;

impl Runner for EvaluateRun {
    fn kind(&self) -> &'static str {
        "evaluate"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let rt = super::Runtime::start(job)?;
        let p = EvaluateParams::read(&job.params)?;
        let mut data = rt.dataset()?;
        let split = rt.split()?;
        // The validation part or the rest of the test set, when the split holds one out.
        let subset = split
            .test_indices(p.on, data.meta.n_test)
            .map_err(crate::MlError::from)?;
        if let Some(idx) = &subset {
            let t = crate::ml::idx_tensor(idx);
            data.test_x = data.test_x.index_select(0, &t);
            data.test_y = data.test_y.index_select(0, &t);
            data.meta.n_test = idx.len() as i64;
            write_json(job, "test_indices.json", idx)?;
        }
        let (model, model_dir) = rt.model("model")?;
        let reference = match &p.reference {
            Some(_) => Some(rt.model("reference")?.0),
            None => None,
        };
        let opts = EvalOptions {
            mia: p.mia,
            mia_samples: p.mia_samples,
            batch: p.batch_size as i64,
            seed: p.seed as u64,
            mia_export: p.mia_export.then(|| job.out_dir.clone()),
            per_class: p.per_class,
            cka_samples: p.cka.then_some(p.cka_samples),
        };
        let mut m = evaluate(&model, reference.as_ref(), &data, &split, &opts)?;
        if subset.is_some() {
            let on = match p.on {
                camu_lab::protocol::EvalOn::Test => "test",
                camu_lab::protocol::EvalOn::Validation => "validation",
            };
            m.insert("test_set".into(), json!(on));
            m.insert("n_test".into(), json!(data.meta.n_test));
        }
        let diverged = m.get("diverged") == Some(&json!(true));
        if diverged {
            tracing::warn!(
                "the model has diverged: {}",
                m.get("diverged_reason")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("non-finite outputs")
            );
        }
        let relearn_on = p.relearn;
        if relearn_on && diverged {
            m.insert("relearn_epochs".into(), Value::Null);
        } else if relearn_on {
            let (original, _original_dir) = rt.model("original")?;
            let ro = RelearnOptions {
                samples: p.relearn_samples as i64,
                lr: p.relearn_lr,
                batch: p.relearn_batch_size as i64,
                max_epochs: p.relearn_max_epochs,
                seed: p.seed,
            };
            // An optional metric: a relearning run that diverges is recorded, not fatal.
            match relearn(&model, &original, &data, &split, &ro) {
                Ok(r) => {
                    m.insert(
                        "relearn_epochs".into(),
                        json!(r.epochs.unwrap_or(ro.max_epochs)),
                    );
                    m.insert("relearn_capped".into(), json!(r.epochs.is_none()));
                    m.insert("relearn_curve".into(), json!(r.curve));
                }
                Err(e) => {
                    tracing::warn!("relearn: {e}");
                    m.insert("relearn_error".into(), json!(e.to_string()));
                }
            }
        }
        // The time of what produced the model: an unlearning method, or a retraining on Dr.
        let produced: Map<String, Value> =
            read_json(&model_dir.join("metrics.json")).unwrap_or_default();
        let time = produced.get("unlearn_time_s").cloned().or_else(|| {
            (produced.get("on") == Some(&json!("remain")))
                .then(|| produced.get("train_time_s").cloned())
                .flatten()
        });
        m.insert("unlearn_time_s".into(), time.unwrap_or(Value::Null));
        // A run the divergence guard cut short: its model is the last finite weights.
        if let Some(e) = produced
            .get("hyperparameters")
            .and_then(|h| h.get("diverged_at_epoch"))
            .filter(|e| !e.is_null())
        {
            m.insert("stopped_at_epoch".into(), e.clone());
        }
        let method = super::model_label(&produced);
        if let Some(values) = produced.get("selected") {
            m.insert("selected".into(), values.clone());
        }
        m.insert("method".into(), method.clone());
        // Where every number came from: this record's key and each input's stage and key, with
        // the producing method's version.
        let key_of = |dir: &std::path::Path| input_key(dir).unwrap_or_default();
        let stage_of = |dir: &std::path::Path| {
            job.inputs
                .iter()
                .find(|(_, input)| input.dir.as_path() == dir)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        };
        let split_dir = input_with(job, "split.json", p.split.as_deref())?;
        let mut provenance = json!({
            "evaluate": {"stage": job.stage, "key": job.key, "version": camu_core::spec::Kind::version(&camu_lab::kinds::evaluate::Evaluate, &job.params)},
            "model": {
                "stage": stage_of(&model_dir), "key": key_of(&model_dir), "method": method,
                "method_version": produced.get("method_version"),
            },
            "split": {"stage": stage_of(&split_dir), "key": key_of(&split_dir)},
        });
        // A method written in Python: its script and the hashes it ran with.
        if let Some(source) = produced.get("source") {
            provenance["model"]["source"] = source.clone();
            provenance["model"]["hyperparameters"] =
                produced.get("hyperparameters").cloned().unwrap_or_default();
        }
        if let Some(r) = p.reference.as_deref() {
            let d = input_with(job, "model.safetensors", Some(r))?;
            provenance["reference"] = json!({"stage": stage_of(&d), "key": key_of(&d)});
        }
        m.insert("provenance".into(), provenance);
        m.insert("scenario".into(), json!(split.scenario));
        m.insert("seed".into(), json!(split.seed));
        m.insert("dataset".into(), json!(data.meta.name));
        write_metrics(job, &m)
    }
}
