//! The lock file next to a pipeline (`NAME.lock.json`): what its last run resolved, stage by
//! stage, so runs can be diffed and `status` can say what changed since.

use super::{KeyMaterial, OutputEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockEntry {
    pub key: String,
    pub material: KeyMaterial,
    pub outputs: BTreeMap<String, OutputEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LockFile {
    pub camu_pipe_version: String,
    pub stages: BTreeMap<String, LockEntry>,
}

/// `pipelines/paper.yaml` -> `pipelines/paper.lock.json`.
pub fn path_for(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("lock.json")
}

/// A lock file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockFileError {
    #[error("lock file {} is unreadable: {source}", path.display())]
    Parse {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("lock file {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockFile {
    /// The lock file of a pipeline; empty if absent or unreadable.
    pub fn read(pipeline: &Path) -> LockFile {
        std::fs::read(path_for(pipeline))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The lock file of `pipeline`: `Ok(None)` where there is none, an error (naming the file)
    /// where it cannot be read or parsed. gc uses this: a lock it cannot read must stop it, not
    /// read as "this pipeline needs nothing".
    pub fn try_read(pipeline: &Path) -> Result<Option<LockFile>, LockFileError> {
        let path = path_for(pipeline);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| LockFileError::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockFileError::Read { path, source }),
        }
    }

    pub fn write(&self, pipeline: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("lock file serializes");
        super::write_atomic(&path_for(pipeline), &bytes)
    }
}

/// Why gc cannot tell what a registered pipeline needs.
#[derive(Debug, thiserror::Error)]
pub enum NeedsUnknown {
    #[error("{}: no lock file {}{}", pipeline.display(), path_for(pipeline).display(), if pipeline.is_file() { "" } else { " (and the pipeline file is gone)" })]
    NoLockFile { pipeline: std::path::PathBuf },
    #[error("{}: {source}", pipeline.display())]
    Unreadable {
        pipeline: std::path::PathBuf,
        #[source]
        source: LockFileError,
    },
}

/// Registered pipelines whose needs are unknown: gc must delete nothing.
#[derive(Debug, thiserror::Error)]
#[error("it cannot tell what {} registered pipeline(s) need:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct UnknownNeeds(pub Vec<NeedsUnknown>);

/// The keys `pipelines` need, by their lock files; any pipeline without a readable lock file
/// makes the whole answer unknown rather than "needs nothing".
pub fn needs_of(
    pipelines: &[std::path::PathBuf],
) -> Result<std::collections::HashSet<String>, UnknownNeeds> {
    let (mut keep, mut unknown) = (std::collections::HashSet::new(), Vec::new());
    for p in pipelines {
        match LockFile::try_read(p) {
            Ok(Some(lock)) => keep.extend(lock.stages.values().map(|e| e.key.clone())),
            Ok(None) => unknown.push(NeedsUnknown::NoLockFile {
                pipeline: p.clone(),
            }),
            Err(source) => unknown.push(NeedsUnknown::Unreadable {
                pipeline: p.clone(),
                source,
            }),
        }
    }
    if unknown.is_empty() {
        Ok(keep)
    } else {
        Err(UnknownNeeds(unknown))
    }
}
