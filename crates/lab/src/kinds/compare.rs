//! `compare`: the comparison tables and plots over the evaluate and audit stages it needs
//! (Markdown, CSV, JSON, SVG and PNG), the same as `camu-pipe report` prints.

use crate::report::{Results, Row, aggregate, write_all};
use camu_core::params::{ParamError, check_keys};
use camu_core::spec::Kind;
use camu_core::stage::io::{input_key, read_json, write_metrics};
use camu_core::stage::{Runner, StageError, StageJob};
use serde_json::{Map, Value, json};

pub struct Compare;

impl Kind for Compare {
    fn name(&self) -> &'static str {
        "compare"
    }
    fn version(&self, _params: &Map<String, Value>) -> u32 {
        // 2: diverged methods, sources per seed. 3: audits among the inputs, report.html.
        3
    }
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ParamError> {
        check_keys(params, &[])
    }
}

/// A compare stage whose inputs hold no result to compare.
#[derive(Debug, thiserror::Error)]
#[error("none of the inputs is an evaluate or audit stage with a result")]
pub struct NothingToCompare;

impl Runner for Compare {
    fn kind(&self) -> &'static str {
        "compare"
    }
    fn run(&self, job: &StageJob) -> Result<(), StageError> {
        let (mut rows, mut rejected) = (Vec::new(), Vec::new());
        let (mut audits, mut audit_points) = (Vec::new(), std::collections::BTreeMap::new());
        for (name, input) in &job.inputs {
            let dir = &input.dir;
            let p = dir.join("metrics.json");
            let Ok(mut metrics) = read_json::<Map<String, Value>>(&p) else {
                continue;
            };
            if input.kind == "audit" {
                for why in crate::report::sanitise(&mut metrics) {
                    rejected.push(format!("{name}: {why}"));
                }
                match crate::report::audit::points(dir) {
                    Ok(p) => {
                        audit_points.insert(name.clone(), p);
                    }
                    Err(why) => rejected.push(format!("{name}: {why}")),
                }
                audits.push(Row {
                    stage: name.clone(),
                    key: input_key(dir),
                    metrics,
                    tuned: None,
                });
                continue;
            }
            // A table row is a method's evaluation: one without a method has no row to be.
            if super::is_evaluation(&input.kind, &metrics) && metrics.contains_key("method") {
                for why in crate::report::sanitise(&mut metrics) {
                    tracing::warn!("{name}: {why}");
                    rejected.push(format!("{name}: {why}"));
                }
                rows.push(Row {
                    stage: name.clone(),
                    key: input_key(dir),
                    metrics,
                    tuned: None,
                });
            }
        }
        if rows.is_empty() && audits.is_empty() {
            return Err(StageError::Kind(Box::new(NothingToCompare)));
        }
        let comparison = aggregate(&Results {
            rows,
            rejected,
            audits,
            audit_points,
            ..Results::default()
        });
        let (files, skipped) =
            write_all(&comparison, &job.out_dir, &job.stage).map_err(|e| StageError::Io {
                action: "write",
                path: e.path,
                source: e.source,
            })?;
        for s in &skipped {
            tracing::warn!("{s}");
        }
        let mut m = Map::new();
        m.insert("groups".into(), json!(comparison.groups.len()));
        m.insert(
            "files".into(),
            json!(
                files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|f| f.to_string_lossy().to_string())
                    .collect::<Vec<_>>()
            ),
        );
        write_metrics(job, &m)
    }
}
