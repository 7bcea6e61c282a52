//! The content-addressed stage cache.
//!
//! Layout under the cache directory:
//! - `objects/ab/cdef…`: output files named by their blake3 hash, read-only;
//! - `out/KEY/…`: each stage's output directory, hard links into `objects/`;
//! - `records/KEY.json`: one record per stage key, written last and atomically, so a record
//!   exists only for a complete entry (a run killed at any point leaves none);
//! - `locks/KEY.lock`: one lock per key, held while the stage is checked or computed;
//! - `logs/KEY.log`: the log of the last attempt (`logs/KEY.attempt-N.log`: failed attempts that
//!   were retried); `tmp/`: staging, cleaned when unowned;
//! - `submissions/KEY.json`: a batch job submitted and not yet collected (see [`Submission`]);
//! - `runs/`, `pipelines/`: the runs alive now and the pipelines that have run (see `runs`).

mod hash;
pub mod key;
pub mod lockfile;
mod runs;

pub use hash::{hash_bytes, hash_file};
pub use key::{KeyMaterial, Upstream};
pub use runs::RunGuard;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("stage declared output `{0}` but the stage did not write it")]
    MissingOutput(String),
    /// A declared output that exists but is not a regular file.
    #[error(
        "declared output `{0}` is {1}, not a regular file; outputs are files written inside ${{out}}"
    )]
    NotAFile(String, &'static str),
    /// A symbolic link among the outputs, or in place of the output directory: collecting it
    /// would reach outside the cache.
    #[error(
        "output `{0}` is a symbolic link; outputs must be regular files written inside ${{out}}"
    )]
    Symlink(String),
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> CacheError + use<> {
    let path = path.to_path_buf();
    move |source| CacheError::Io { path, op, source }
}

/// One output file of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputEntry {
    pub hash: String,
    pub size: u64,
}

/// What a completed stage left in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    /// The stage that produced it (another stage with the same key reuses it).
    pub stage: String,
    pub material: KeyMaterial,
    pub outputs: BTreeMap<String, OutputEntry>,
    #[serde(default)]
    pub metrics: Option<serde_json::Value>,
    pub started_at: f64,
    pub duration_s: f64,
    pub host: String,
    pub device: String,
    pub camu_pipe_version: String,
    /// Relative to the cache directory.
    pub log: String,
    /// How many attempts it took (`resources.retries`); the failed ones' logs are
    /// `logs/KEY.attempt-N.log`.
    #[serde(default = "one_attempt")]
    pub attempts: u32,
    /// The CPU threads it ran with, and its share of a GPU when it had a fraction of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_share: Option<f64>,
}

fn one_attempt() -> u32 {
    1
}

/// A stage submitted to a batch system (`submissions/KEY.json`): written before the submission
/// and again with the job's id, removed once the job's outcome is collected. A run that finds
/// one (its submitter died) adopts the job instead of submitting the stage again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub key: String,
    pub stage: String,
    /// The staging directory the job writes into (its `job.json`, `out/`, `exit`).
    pub staging: PathBuf,
    /// The job id; None between the submission and its answer.
    pub job: Option<String>,
    pub submitted_at: f64,
}

/// A cached output whose content no longer matches its hash.
#[derive(Debug)]
pub struct Corruption {
    pub path: PathBuf,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// An exclusive lock on one key; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    // 0666 less the umask, as any other file: a cache shared by a group stays readable to it.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        for sub in [
            "objects",
            "out",
            "records",
            "locks",
            "logs",
            "tmp",
            "submissions",
        ] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p, "create directory"))?;
        }
        let root = fs::canonicalize(root).map_err(io_err(root, "resolve path"))?;
        Ok(Cache { root })
    }

    /// The cache at `root` for reading only (`status`, `report`, `path`, dry runs): nothing is
    /// created, so a mistyped `--cache` leaves no empty cache behind; a missing one reads as
    /// empty.
    pub fn open_read_only(root: &Path) -> Result<Cache, CacheError> {
        let root = fs::canonicalize(root)
            .or_else(|_| std::path::absolute(root))
            .map_err(io_err(root, "resolve path"))?;
        Ok(Cache { root })
    }

    pub fn out_dir(&self, key: &str) -> PathBuf {
        self.root.join("out").join(key)
    }
    pub fn log_path(&self, key: &str) -> PathBuf {
        self.root.join("logs").join(format!("{key}.log"))
    }

    /// Where the log of a failed attempt that was retried is kept (`logs/KEY.attempt-N.log`).
    pub fn attempt_log_path(&self, key: &str, attempt: u32) -> PathBuf {
        self.root
            .join("logs")
            .join(format!("{key}.attempt-{attempt}.log"))
    }
    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("records").join(format!("{key}.json"))
    }
    fn object_path(&self, hash: &str) -> PathBuf {
        self.root.join("objects").join(&hash[..2]).join(&hash[2..])
    }

    /// The record for a key, if a complete one exists. An unreadable record is treated as absent.
    pub fn record(&self, key: &str) -> Option<Record> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.key == key => Some(r),
            _ => {
                tracing::warn!(key, "ignoring unreadable cache record");
                None
            }
        }
    }

    /// Checks every output of a record against its hash. With `repair`, a view file that was
    /// removed is linked again from its object; without, nothing is written (what `status` uses).
    pub fn verify(&self, record: &Record, repair: bool) -> Result<(), Corruption> {
        use rayon::prelude::*;
        let out = self.out_dir(&record.key);
        record.outputs.par_iter().try_for_each(|(rel, entry)| {
            let obj = self.object_path(&entry.hash);
            let mut path = out.join(rel);
            if !path.exists() && obj.exists() {
                if repair {
                    // The view was removed but the object survives: re-link it.
                    if let Some(parent) = path.parent() {
                        let _ = fs::create_dir_all(parent);
                    }
                    let _ = fs::hard_link(&obj, &path);
                } else {
                    path = obj.clone();
                }
            }
            let actual = match hash_file(&path) {
                Ok(h) => h,
                Err(_) => "missing".to_string(),
            };
            let object_ok = obj.exists();
            if actual != entry.hash || !object_ok {
                Err(Corruption {
                    path: if object_ok { path } else { obj },
                    expected: entry.hash.clone(),
                    actual: if object_ok { actual } else { "missing".into() },
                })
            } else {
                Ok(())
            }
        })
    }

    /// Drops an entry whose outputs failed verification: the record, its view and bad objects.
    pub fn discard(&self, record: &Record) {
        let _ = fs::remove_file(self.record_path(&record.key));
        let _ = remove_dir_writable(&self.out_dir(&record.key));
        for entry in record.outputs.values() {
            let obj = self.object_path(&entry.hash);
            if hash_file(&obj).ok().as_deref() != Some(entry.hash.as_str()) {
                let _ = fs::remove_file(&obj);
            }
        }
    }

    fn lock_file(&self, key: &str) -> Result<File, CacheError> {
        let p = self.root.join("locks").join(format!("{key}.lock"));
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p, "open lock"))
    }

    /// Takes the key's lock, waiting for another process that holds it.
    pub fn lock(&self, key: &str) -> Result<KeyLock, CacheError> {
        let f = self.lock_file(key)?;
        f.lock().map_err(io_err(&self.root.join("locks"), "lock"))?;
        Ok(KeyLock { _file: f })
    }

    /// Takes the key's lock if nobody holds it.
    pub fn try_lock(&self, key: &str) -> Result<Option<KeyLock>, CacheError> {
        let f = self.lock_file(key)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: f })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&self.root, "lock")(e)),
        }
    }

    /// A fresh staging directory for a key (call with the key's lock held).
    pub fn staging(&self, key: &str) -> Result<PathBuf, CacheError> {
        let p = self
            .root
            .join("tmp")
            .join(format!("{key}.{}", std::process::id()));
        let _ = remove_dir_writable(&p);
        fs::create_dir_all(p.join("out")).map_err(io_err(&p, "create staging directory"))?;
        Ok(p)
    }

    fn submission_path(&self, key: &str) -> PathBuf {
        self.root.join("submissions").join(format!("{key}.json"))
    }

    /// The batch job a run submitted for this key and has not collected yet (its process may
    /// have died since).
    pub fn submission(&self, key: &str) -> Option<Submission> {
        serde_json::from_slice(&fs::read(self.submission_path(key)).ok()?).ok()
    }

    /// Records (atomically) a submission, before and again after its job id is known.
    pub fn record_submission(&self, s: &Submission) -> Result<(), CacheError> {
        let p = self.submission_path(&s.key);
        let bytes = serde_json::to_vec_pretty(s).expect("a submission serializes");
        write_atomic(&p, &bytes).map_err(io_err(&p, "write"))
    }

    /// Drops a submission once its job is collected or abandoned.
    pub fn forget_submission(&self, key: &str) {
        let _ = fs::remove_file(self.submission_path(key));
    }

    /// Removes staging directories left by killed runs (those whose key lock nobody holds),
    /// except one a recorded batch job still writes into (the next run adopts it).
    pub fn clean_stale_staging(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let key = name.split('.').next().unwrap_or_default().to_string();
            if key.len() != 64 {
                continue;
            }
            if self.submission(&key).is_some_and(|s| s.staging == e.path()) {
                continue;
            }
            if let Ok(Some(_lock)) = self.try_lock(&key) {
                let _ = remove_dir_writable(&e.path());
            }
        }
    }

    /// Moves a finished staging output directory into the store and writes the record last.
    pub fn commit(
        &self,
        staging: &Path,
        declared: &[String],
        mut record: Record,
    ) -> Result<Record, CacheError> {
        let out = staging.join("out");
        let meta = fs::symlink_metadata(&out).map_err(io_err(&out, "inspect outputs"))?;
        if !meta.is_dir() {
            return Err(CacheError::Symlink(".".into()));
        }
        for d in declared {
            match fs::symlink_metadata(out.join(d)) {
                Ok(m) if m.file_type().is_symlink() => return Err(CacheError::Symlink(d.clone())),
                Ok(m) if m.is_file() => {}
                Ok(m) => {
                    use std::os::unix::fs::FileTypeExt;
                    let t = m.file_type();
                    let what = if t.is_dir() {
                        "a directory"
                    } else if t.is_fifo() {
                        "a FIFO"
                    } else if t.is_socket() {
                        "a socket"
                    } else {
                        "a device"
                    };
                    return Err(CacheError::NotAFile(d.clone(), what));
                }
                Err(_) => return Err(CacheError::MissingOutput(d.clone())),
            }
        }
        let mut files = Vec::new();
        walk_files(&out, &out, &mut files)?;
        let mut outputs = BTreeMap::new();
        for rel in files {
            let path = out.join(&rel);
            let hash = hash_file(&path).map_err(io_err(&path, "hash output"))?;
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let obj = self.object_path(&hash);
            if obj.exists() {
                // Deduplicate: the view links the existing object.
                fs::remove_file(&path).map_err(io_err(&path, "replace output"))?;
            } else {
                let parent = obj.parent().unwrap_or(&self.root);
                fs::create_dir_all(parent).map_err(io_err(parent, "create object dir"))?;
                let tmp = parent.join(format!(".{}.{}", &hash[2..], std::process::id()));
                if linked_elsewhere(&path) {
                    // A hard link to a file outside ${out}: copy it, leaving that file as it is.
                    fs::copy(&path, &tmp).map_err(io_err(&tmp, "store object"))?;
                    set_readonly(&tmp);
                } else {
                    set_readonly(&path);
                    fs::hard_link(&path, &tmp).map_err(io_err(&tmp, "store object"))?;
                }
                fs::rename(&tmp, &obj).map_err(io_err(&obj, "store object"))?;
                fs::remove_file(&path).map_err(io_err(&path, "replace output"))?;
            }
            fs::hard_link(&obj, &path).map_err(io_err(&path, "link output"))?;
            outputs.insert(rel, OutputEntry { hash, size });
        }
        let view = self.out_dir(&record.key);
        let _ = remove_dir_writable(&view);
        fs::rename(&out, &view).map_err(io_err(&view, "publish outputs"))?;
        record.outputs = outputs;
        let bytes = serde_json::to_vec_pretty(&record).expect("records serialize");
        let rp = self.record_path(&record.key);
        write_atomic(&rp, &bytes).map_err(io_err(&rp, "write record"))?;
        let _ = remove_dir_writable(staging);
        Ok(record)
    }

    /// Every key that has a record.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = fs::read_dir(self.root.join("records"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(String::from)
            })
            .collect();
        keys.sort();
        keys
    }

    /// Deletes every entry (record, output view, log) whose key is not in `keep`, then every
    /// object no kept record uses, each under its key's lock. With `dry_run` nothing is deleted;
    /// the report says what was (or would be) removed and the bytes freed.
    ///
    /// Nothing written since `protect_from` is deleted: entries and objects of runs that were
    /// alive when gc started (or started since) are not in anybody's lock file yet.
    pub fn gc(
        &self,
        keep: &std::collections::HashSet<String>,
        dry_run: bool,
        protect_from: std::time::SystemTime,
    ) -> Result<GcReport, CacheError> {
        let mut report = GcReport::default();
        let mut live_objects = std::collections::HashSet::new();
        let recent = |p: &Path| {
            fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= protect_from)
        };
        for key in self.keys() {
            let record = self.record(&key);
            if keep.contains(&key) || recent(&self.record_path(&key)) {
                if let Some(r) = record {
                    live_objects.extend(r.outputs.values().map(|o| o.hash.clone()));
                }
                continue;
            }
            report.entries.push(key.clone());
            if !dry_run {
                let _lock = self.lock(&key)?;
                let _ = fs::remove_file(self.record_path(&key));
                let _ = remove_dir_writable(&self.out_dir(&key));
                if let Ok(m) = fs::metadata(self.log_path(&key)) {
                    report.bytes += m.len();
                }
                let _ = fs::remove_file(self.log_path(&key));
                for attempt in 1.. {
                    if fs::remove_file(self.attempt_log_path(&key, attempt)).is_err() {
                        break;
                    }
                }
            }
        }
        let objects = self.root.join("objects");
        for shard in fs::read_dir(&objects).into_iter().flatten().flatten() {
            for obj in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                let hash = format!(
                    "{}{}",
                    shard.file_name().to_string_lossy(),
                    obj.file_name().to_string_lossy()
                );
                if live_objects.contains(&hash) || recent(&obj.path()) {
                    continue;
                }
                report.objects += 1;
                report.bytes += obj.metadata().map(|m| m.len()).unwrap_or(0);
                if !dry_run {
                    let _ = fs::remove_file(obj.path());
                }
            }
        }
        Ok(report)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub entries: Vec<String>,
    pub objects: usize,
    pub bytes: u64,
}

/// More than one name for the file: something outside `${out}` shares it.
fn linked_elsewhere(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.nlink() > 1)
}

/// Every regular file under `dir`, relative to `root`; a symbolic link anywhere is an error
/// (`file_type` does not follow links, so nothing outside `dir` is reached).
fn walk_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), CacheError> {
    for e in fs::read_dir(dir).map_err(io_err(dir, "list outputs"))? {
        let e = e.map_err(io_err(dir, "list outputs"))?;
        let ft = e.file_type().map_err(io_err(dir, "list outputs"))?;
        let p = e.path();
        if ft.is_symlink() {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            return Err(CacheError::Symlink(rel));
        }
        if ft.is_dir() {
            walk_files(root, &p, out)?;
        } else if ft.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
    Ok(())
}

fn set_readonly(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o444));
}

/// Removes a directory tree whose files may be read-only.
pub fn remove_dir_writable(path: &Path) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    fs::remove_dir_all(path)
}
