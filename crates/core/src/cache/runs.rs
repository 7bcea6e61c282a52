//! Runs and pipelines known to a cache, so `gc` neither races a run nor deletes what another
//! pipeline using the same cache still references.
//!
//! A run holds an exclusive lock on `runs/ID` for its lifetime (the OS drops it if the process
//! dies); the file's name carries its start time. A run also leaves `pipelines/HASH` holding its
//! pipeline's path, which `gc` reads to find the other pipelines' lock files.

use super::{Cache, CacheError, io_err};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Held while a run lasts; removes its file when dropped.
#[derive(Debug)]
pub struct RunGuard {
    path: PathBuf,
    _file: File,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

impl Cache {
    /// Registers a run of `pipeline` for as long as the guard lives.
    pub fn register_run(&self, pipeline: &Path) -> Result<RunGuard, CacheError> {
        let dir = self.root.join("runs");
        fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
        let path = dir.join(format!("{}-{}", now_ns(), std::process::id()));
        let file = File::create(&path).map_err(io_err(&path, "register run"))?;
        file.lock().map_err(io_err(&path, "lock run"))?;
        let pipes = self.root.join("pipelines");
        fs::create_dir_all(&pipes).map_err(io_err(&pipes, "create directory"))?;
        let text = pipeline.display().to_string();
        let entry = pipes.join(super::hash_bytes(text.as_bytes()));
        if !entry.exists() {
            super::write_atomic(&entry, text.as_bytes())
                .map_err(io_err(&entry, "register pipeline"))?;
        }
        Ok(RunGuard { path, _file: file })
    }

    /// The start of the oldest run that is still alive, if any. Files of dead runs are removed.
    pub fn oldest_live_run(&self) -> Option<SystemTime> {
        let entries = fs::read_dir(self.root.join("runs")).ok()?;
        let mut oldest: Option<u128> = None;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(start) = name.split('-').next().and_then(|s| s.parse::<u128>().ok()) else {
                continue;
            };
            let Ok(f) = File::open(e.path()) else {
                continue;
            };
            match f.try_lock() {
                // Nobody holds it: that run is gone.
                Ok(()) => {
                    let _ = fs::remove_file(e.path());
                }
                Err(_) => oldest = Some(oldest.map_or(start, |o| o.min(start))),
            }
        }
        oldest.map(|ns| UNIX_EPOCH + Duration::from_nanos(ns as u64))
    }

    /// Paths of every pipeline that has run against this cache, whether or not its file is
    /// still there.
    pub fn registered_pipelines(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(self.root.join("pipelines"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .map(PathBuf::from)
            .collect();
        out.sort();
        out
    }

    /// Stops protecting `pipeline`'s results in gc (`gc --forget`); true if it was registered.
    pub fn forget_pipeline(&self, pipeline: &Path) -> Result<bool, CacheError> {
        let text = pipeline.display().to_string();
        let entry = self
            .root
            .join("pipelines")
            .join(super::hash_bytes(text.as_bytes()));
        match fs::remove_file(&entry) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&entry, "forget pipeline")(e)),
        }
    }
}
