//! Which stages a command acts on: `--select` matrix slices, targets with their ancestors, and
//! `--force` names.

use super::{EngineError, Options};
use crate::graph::Dag;
use crate::spec::{Pipeline, Stage, interp};

pub(crate) fn matches_name(stage: &Stage, pattern: &str) -> bool {
    stage.name == pattern || stage.base == pattern
}

/// The stages selected by targets and `--select`, as a mask over `Pipeline::stages`.
pub fn selection(p: &Pipeline, dag: &Dag, opts: &Options) -> Result<Vec<bool>, EngineError> {
    let mut mask = vec![true; p.stages.len()];
    if !opts.select.is_empty() {
        for (var, val) in &opts.select {
            let mut has_var = false;
            let mut has_val = false;
            for s in &p.stages {
                if let Some(v) = s.bindings.get(var) {
                    has_var = true;
                    has_val |= interp::value_text(v) == *val;
                }
            }
            if !has_var {
                return Err(EngineError::Selection(format!(
                    "--select {var}={val}: no stage has a matrix variable `{var}`"
                )));
            }
            if !has_val {
                return Err(EngineError::Selection(format!(
                    "--select {var}={val}: no stage has {var}={val}"
                )));
            }
        }
        for (i, s) in p.stages.iter().enumerate() {
            mask[i] = opts.select.iter().all(|(var, val)| {
                s.bindings
                    .get(var)
                    .is_none_or(|v| interp::value_text(v) == *val)
            });
        }
        // A stage that needs something outside the slice (e.g. a comparison over all seeds)
        // is outside it too.
        for &i in &dag.order {
            if mask[i] && dag.parents(i).any(|j| !mask[j]) {
                mask[i] = false;
            }
        }
    }
    if !opts.targets.is_empty() {
        let mut roots = Vec::new();
        for t in &opts.targets {
            let found: Vec<usize> = (0..p.stages.len())
                .filter(|&i| mask[i] && matches_name(&p.stages[i], t))
                .collect();
            if found.is_empty() {
                return Err(EngineError::Selection(format!(
                    "no stage `{t}` in {} (within the selection)",
                    p.path.display()
                )));
            }
            roots.extend(found);
        }
        let keep = dag.with_ancestors(&roots);
        for (i, m) in mask.iter_mut().enumerate() {
            *m = keep.contains(&i);
        }
    }
    for f in &opts.force {
        if !p.stages.iter().any(|s| matches_name(s, f)) {
            return Err(EngineError::Selection(format!(
                "--force {f}: no such stage"
            )));
        }
    }
    Ok(mask)
}
