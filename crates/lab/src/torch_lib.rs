//! Which libtorch the `camu-worker` binary will load, and whether it is the version it was built
//! for. A mismatched libtorch fails at load time with missing symbols, inside every ML stage; the
//! command line checks first and says what it found.

use std::path::{Path, PathBuf};

/// The libtorch version tch 0.24 binds.
pub const EXPECTED: &str = "2.11.0";

/// The directory the dynamic loader takes `libtorch_cpu.so` from: the first `LD_LIBRARY_PATH`
/// entry that has it (it outranks the binary's RUNPATH), else `built`'s `lib/` (the libtorch the
/// binary was linked against, whose path is in its RUNPATH).
pub fn locate(ld_library_path: Option<&str>, built: Option<&Path>) -> Option<PathBuf> {
    let has = |d: &Path| d.join("libtorch_cpu.so").is_file();
    ld_library_path
        .into_iter()
        .flat_map(|p| p.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .find(|d| has(d))
        .or_else(|| built.map(|b| b.join("lib")).filter(|d| has(d)))
}

/// The version of the libtorch in `lib`: a torch wheel has `../version.py`
/// (`__version__ = '2.11.0+cu130'`), a libtorch archive `../build-version` (`2.11.0+cpu`).
pub fn version_of(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|l| {
            let v = l.strip_prefix("__version__")?.split(['\'', '"']).nth(1)?;
            Some(v.to_string())
        });
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string())
}

/// What was found: the directory, its version, and whether it is a CUDA build.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub lib: PathBuf,
    pub version: Option<String>,
    pub cuda: bool,
}

/// A libtorch of another version than the worker is built for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the ML stages would load libtorch {found} from {} but camu-worker is built for {EXPECTED} \
     (tch 0.24): install torch=={EXPECTED} and point LD_LIBRARY_PATH at its lib/",
    lib.display()
)]
pub struct WrongVersion {
    pub found: String,
    pub lib: PathBuf,
}

/// Checks the libtorch the worker will load. `Ok(None)`: none found (the worker will say so);
/// `Err`: a version other than [`EXPECTED`].
pub fn check(
    ld_library_path: Option<&str>,
    built: Option<&Path>,
) -> Result<Option<Found>, WrongVersion> {
    let Some(lib) = locate(ld_library_path, built) else {
        return Ok(None);
    };
    let version = version_of(&lib);
    let cuda = lib.join("libtorch_cuda.so").is_file();
    if let Some(v) = &version {
        let release = v.split('+').next().unwrap_or(v);
        if release != EXPECTED {
            return Err(WrongVersion {
                found: v.clone(),
                lib,
            });
        }
    }
    Ok(Some(Found { lib, version, cuda }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torch_dir(version_py: Option<&str>, cuda: bool) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("torch/lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libtorch_cpu.so"), b"").unwrap();
        if cuda {
            std::fs::write(lib.join("libtorch_cuda.so"), b"").unwrap();
        }
        if let Some(v) = version_py {
            std::fs::write(d.path().join("torch/version.py"), v).unwrap();
        }
        d
    }

    #[test]
    fn finds_the_first_library_path_entry_and_checks_its_version() {
        let good = torch_dir(
            Some("__version__ = '2.11.0+cu130'\ngit_version = 'x'\n"),
            true,
        );
        let bad = torch_dir(Some("__version__ = \"2.13.0+cu130\"\n"), true);
        let lib = |d: &tempfile::TempDir| d.path().join("torch/lib").display().to_string();
        let path = format!("/nonexistent:{}:{}", lib(&good), lib(&bad));
        let found = check(Some(&path), None).unwrap().unwrap();
        assert_eq!(found.version.as_deref(), Some("2.11.0+cu130"));
        assert!(found.cuda);
        let path = format!("{}:{}", lib(&bad), lib(&good));
        let e = check(Some(&path), None).unwrap_err().to_string();
        assert!(
            e.contains("libtorch 2.13.0+cu130") && e.contains("built for 2.11.0"),
            "{e}"
        );
    }

    #[test]
    fn falls_back_to_the_built_libtorch_and_reads_build_version() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("lib")).unwrap();
        std::fs::write(d.path().join("lib/libtorch_cpu.so"), b"").unwrap();
        std::fs::write(d.path().join("build-version"), "2.11.0+cpu\n").unwrap();
        let found = check(Some(""), Some(d.path())).unwrap().unwrap();
        assert_eq!(found.version.as_deref(), Some("2.11.0+cpu"));
        assert!(!found.cuda);
        assert_eq!(check(None, None), Ok(None));
    }
}
