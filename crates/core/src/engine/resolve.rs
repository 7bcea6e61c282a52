//! One resolver for `status` and `run`: a stage's key from its parameters, input files and
//! upstream records, and whether its cache entry can be used, with the reasons when it cannot.

use super::EngineError;
use super::targets::matches_name;
use crate::cache::{Cache, Corruption, KeyMaterial, Record, Upstream, key::canonical, lockfile};
use crate::spec::{Pipeline, Stage};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What to do with one stage.
pub enum Decision {
    /// A verified entry: use it.
    Cached(Record),
    /// Run it. `corrupt` is an entry that failed verification (to be discarded first).
    Run {
        key: String,
        material: KeyMaterial,
        reasons: Vec<String>,
        corrupt: Option<Box<(Record, Corruption)>>,
    },
    /// An upstream stage has no record yet, so this key is not known.
    Pending { reasons: Vec<String> },
}

pub struct Resolver<'a> {
    pipeline: &'a Pipeline,
    cache: &'a Cache,
    /// What the last run resolved, to explain what changed since.
    lock: lockfile::LockFile,
    force_all: bool,
    force: Vec<String>,
    /// Relink removed view files (run); `status` only reads.
    repair: bool,
    files: FileHashes,
}

impl<'a> Resolver<'a> {
    pub fn new(
        pipeline: &'a Pipeline,
        cache: &'a Cache,
        force_all: bool,
        force: &[String],
        repair: bool,
    ) -> Self {
        Resolver {
            pipeline,
            cache,
            lock: lockfile::LockFile::read(&pipeline.path),
            force_all,
            force: force.to_vec(),
            repair,
            files: FileHashes::default(),
        }
    }

    pub fn lock(&self) -> &lockfile::LockFile {
        &self.lock
    }

    pub fn forced(&self, s: &Stage) -> bool {
        self.force_all || self.force.iter().any(|f| matches_name(s, f))
    }

    /// Key material of stage `i`, given the records of its upstream stages.
    fn material(
        &self,
        i: usize,
        upstream: &BTreeMap<String, Upstream>,
    ) -> Result<KeyMaterial, EngineError> {
        let s = &self.pipeline.stages[i];
        let mut files = BTreeMap::new();
        for f in &s.inputs {
            let path = self.pipeline.dir.join(f);
            files.insert(f.clone(), self.files.hash(&s.name, &path)?);
        }
        for (name, hash) in &s.content {
            files.insert(name.clone(), hash.clone());
        }
        Ok(KeyMaterial {
            kind: s.kind.clone(),
            kind_version: s.kind_version,
            params: canonical(&serde_json::Value::Object(s.params.clone())),
            upstream: upstream.clone(),
            command: s.command.clone(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            files,
            outputs: s.outputs.clone(),
        })
    }

    /// The upstream part of the key, if every parent has a record.
    fn upstream_of(
        &self,
        i: usize,
        records: &[Option<Record>],
    ) -> Option<BTreeMap<String, Upstream>> {
        let s = &self.pipeline.stages[i];
        let mut up = BTreeMap::new();
        for n in &s.needs {
            let parent = self.pipeline.position(n)?;
            let r = records[parent].as_ref()?;
            let outputs = r
                .outputs
                .iter()
                .map(|(f, e)| (f.clone(), e.hash.clone()))
                .collect();
            up.insert(
                n.clone(),
                Upstream {
                    // Early cutoff: the outputs alone stand for the parent.
                    key: if self.pipeline.stages[parent].cutoff {
                        String::new()
                    } else {
                        r.key.clone()
                    },
                    outputs,
                },
            );
        }
        Some(up)
    }

    /// Decides stage `i` given the records resolved so far (indexed like the pipeline's stages).
    pub fn resolve(&self, i: usize, records: &[Option<Record>]) -> Result<Decision, EngineError> {
        let s = &self.pipeline.stages[i];
        let old = self.lock.stages.get(&s.name);
        let Some(upstream) = self.upstream_of(i, records) else {
            let pending: Vec<&str> = s
                .needs
                .iter()
                .filter(|n| {
                    self.pipeline
                        .position(n)
                        .is_some_and(|j| records[j].is_none())
                })
                .map(String::as_str)
                .collect();
            let shown = if pending.len() > 3 {
                format!("{} and {} more", pending[..3].join(", "), pending.len() - 3)
            } else {
                pending.join(", ")
            };
            let mut reasons = vec![format!("upstream will run: {shown}")];
            if let Some(old) = old {
                reasons.extend(
                    self.material(i, &old.material.upstream)?
                        .diff(&old.material),
                );
            }
            return Ok(Decision::Pending { reasons });
        };
        let material = self.material(i, &upstream)?;
        let key = material.key();
        let forced = self.forced(s);
        let mut corrupt = None;
        let mut reasons = Vec::new();
        match self.cache.record(&key) {
            Some(r) => match self.cache.verify(&r, self.repair) {
                Ok(()) if !forced => return Ok(Decision::Cached(r)),
                Ok(()) => reasons.push("forced".to_string()),
                Err(c) => {
                    reasons.push(if c.actual == "missing" {
                        format!("cached output missing: {}", c.path.display())
                    } else {
                        format!(
                            "cached output corrupt: {} (hash {}, expected {})",
                            c.path.display(),
                            c.actual,
                            c.expected
                        )
                    });
                    corrupt = Some(Box::new((r, c)));
                }
            },
            None if forced => reasons.push("forced".to_string()),
            None => match old {
                None => reasons.push("never run".to_string()),
                Some(o) if o.key == key => {
                    reasons.push("outputs missing from the cache (removed or collected)".into())
                }
                Some(o) => {
                    let d = material.diff(&o.material);
                    if d.is_empty() {
                        reasons.push("key changed".into());
                    }
                    reasons.extend(d);
                }
            },
        }
        Ok(Decision::Run {
            key,
            material,
            reasons,
            corrupt,
        })
    }
}

/// Hashes declared input files (and directories, file by file), memoised within one command.
#[derive(Default)]
struct FileHashes {
    memo: std::sync::Mutex<HashMap<PathBuf, String>>,
}

impl FileHashes {
    fn hash(&self, stage: &str, path: &Path) -> Result<String, EngineError> {
        if let Some(h) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Ok(h.clone());
        }
        let err = |cause: String| EngineError::Input {
            stage: stage.to_string(),
            path: path.to_path_buf(),
            cause,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let h = if meta.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files).map_err(|e| err(e.to_string()))?;
            files.sort();
            let mut listing = String::new();
            for f in files {
                let rel = f.strip_prefix(path).unwrap_or(&f).display().to_string();
                let h = crate::cache::hash_file(&f).map_err(|e| err(e.to_string()))?;
                listing.push_str(&format!("{rel}\0{h}\n"));
            }
            crate::cache::hash_bytes(listing.as_bytes())
        } else {
            crate::cache::hash_file(path).map_err(|e| err(e.to_string()))?
        };
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), h.clone());
        Ok(h)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            collect_files(&e.path(), out)?;
        } else {
            out.push(e.path());
        }
    }
    Ok(())
}
