//! Fetching dataset files: the local store first, then mirrors (URL bases or directories), then
//! system copies, then the canonical URLs. Every file is verified by checksum before use; a file
//! that fails is never kept.

use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One file of a dataset and the checksums it may match.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub name: String,
    /// md5 of the file as published.
    pub md5: String,
    /// md5 of the gunzipped payload, where known: accepts re-compressed copies (Debian's).
    pub payload_md5: Option<String>,
}

/// Where a dataset's files come from.
#[derive(Debug, Clone)]
pub struct Source {
    pub dataset: String,
    pub files: Vec<FileSpec>,
    /// Canonical URL bases, tried last, in order.
    pub urls: Vec<String>,
    /// Directories of system packages that ship the files (tried before the network).
    pub system_dirs: Vec<PathBuf>,
}

/// Why one source of a file failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("checksum mismatch: expected md5 {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    #[error(
        "checksum mismatch: expected md5 {expected} (or payload md5 {payload}), got {actual} (payload {actual_payload})"
    )]
    PayloadChecksum {
        expected: String,
        payload: String,
        actual: String,
        actual_payload: String,
    },
    #[error(transparent)]
    Http(#[from] ureq::Error),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("transfer broke off after {got} bytes{}: {source}", total.map(|t| format!(" of {t}")).unwrap_or_default())]
    Broken {
        got: usize,
        total: Option<u64>,
        #[source]
        source: std::io::Error,
    },
    #[error("truncated: got {got} of {total} bytes")]
    Truncated { got: usize, total: u64 },
    #[error(transparent)]
    Read(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{file}: every source failed:\n{}", attempts.iter().map(|(s, r)| format!("  - {s}: {r}")).collect::<Vec<_>>().join("\n"))]
    AllFailed {
        file: String,
        attempts: Vec<(String, AttemptError)>,
    },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
}

fn md5_hex(bytes: &[u8]) -> String {
    let d = Md5::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a file's bytes against its spec; the error names expected and actual hashes.
pub fn verify(spec: &FileSpec, bytes: &[u8]) -> Result<(), AttemptError> {
    let actual = md5_hex(bytes);
    if actual == spec.md5 {
        return Ok(());
    }
    if let Some(payload) = &spec.payload_md5
        && let Ok(raw) = super::formats::gunzip(bytes, &spec.name)
    {
        let actual_payload = md5_hex(&raw);
        if &actual_payload == payload {
            return Ok(());
        }
        return Err(AttemptError::PayloadChecksum {
            expected: spec.md5.clone(),
            payload: payload.clone(),
            actual,
            actual_payload,
        });
    }
    Err(AttemptError::Checksum {
        expected: spec.md5.clone(),
        actual,
    })
}

/// Reports download progress: a bar on a terminal, a log line every 10% otherwise.
fn progress(name: &str, total: Option<u64>) -> camu_core::progress::StageProgress {
    camu_core::progress::StageProgress::new(&format!("download {name}"), total.unwrap_or(0), "B")
}

fn http_get(url: &str, name: &str) -> Result<Vec<u8>, AttemptError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(url).call()?;
    let status = resp.status();
    if !status.is_success() {
        return Err(AttemptError::Status(status.as_u16()));
    }
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut reader = resp.into_body().into_reader();
    let mut buf = Vec::with_capacity(total.unwrap_or(0) as usize);
    let bar = progress(name, total);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                bar.set(buf.len() as u64);
            }
            Err(source) => {
                return Err(AttemptError::Broken {
                    got: buf.len(),
                    total,
                    source,
                });
            }
        }
    }
    bar.finish();
    if let Some(t) = total
        && buf.len() as u64 != t
    {
        return Err(AttemptError::Truncated {
            got: buf.len(),
            total: t,
        });
    }
    Ok(buf)
}

/// Joins a URL base (with or without a trailing slash) and a file name.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Makes `spec` available in `store`, verified, and returns its path.
pub fn fetch(
    source: &Source,
    spec: &FileSpec,
    store: &Path,
    mirrors: &[String],
) -> Result<PathBuf, DownloadError> {
    let io = |path: &Path, e: std::io::Error| DownloadError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    };
    std::fs::create_dir_all(store).map_err(|e| io(store, e))?;
    let dest = store.join(&spec.name);
    let mut attempts = Vec::new();
    if let Ok(bytes) = std::fs::read(&dest) {
        match verify(spec, &bytes) {
            Ok(()) => return Ok(dest),
            Err(e) => {
                tracing::warn!(
                    "{}: stored copy is bad ({e}); fetching again",
                    dest.display()
                );
                attempts.push((dest.display().to_string(), e));
                let _ = std::fs::remove_file(&dest);
            }
        }
    }
    let mut candidates: Vec<String> = mirrors.to_vec();
    candidates.extend(source.system_dirs.iter().map(|d| d.display().to_string()));
    candidates.extend(source.urls.iter().cloned());
    for base in candidates {
        let (label, got) = if is_url(&base) {
            let url = join_url(&base, &spec.name);
            tracing::info!("fetching {url}");
            (url.clone(), http_get(&url, &spec.name))
        } else {
            let p = Path::new(&base).join(&spec.name);
            (
                p.display().to_string(),
                std::fs::read(&p).map_err(AttemptError::from),
            )
        };
        let bytes = match got {
            Ok(b) => b,
            Err(e) => {
                attempts.push((label, e));
                continue;
            }
        };
        if let Err(e) = verify(spec, &bytes) {
            attempts.push((label, e));
            continue;
        }
        // Verified: store it atomically so a killed download never leaves a bad file.
        let mut tmp = tempfile::NamedTempFile::new_in(store).map_err(|e| io(store, e))?;
        tmp.write_all(&bytes).map_err(|e| io(&dest, e))?;
        tmp.persist(&dest).map_err(|e| io(&dest, e.error))?;
        tracing::info!("{} verified from {label}", spec.name);
        return Ok(dest);
    }
    Err(DownloadError::AllFailed {
        file: spec.name.clone(),
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_recompressed_payload() {
        use flate2::{Compression, write::GzEncoder};
        let payload = b"hello world".to_vec();
        let gz = |level| {
            let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
            e.write_all(&payload).unwrap();
            e.finish().unwrap()
        };
        let (a, b) = (gz(1), gz(9));
        let spec = FileSpec {
            name: "f.gz".into(),
            md5: md5_hex(&a),
            payload_md5: Some(md5_hex(&payload)),
        };
        assert!(verify(&spec, &a).is_ok());
        assert!(verify(&spec, &b).is_ok(), "a re-compressed copy must pass");
        let err = verify(&spec, b"junk").unwrap_err().to_string();
        assert!(
            err.contains(&spec.md5) && err.contains(&md5_hex(b"junk")),
            "{err}"
        );
    }

    #[test]
    fn url_joining() {
        assert_eq!(join_url("http://h/a/", "f"), "http://h/a/f");
        assert_eq!(join_url("http://h/a", "f"), "http://h/a/f");
    }
}
