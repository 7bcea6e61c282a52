//! Content hashing with blake3.

use std::io;
use std::path::Path;

/// Below this size mmap set-up costs more than it saves; read the file instead.
const MMAP_THRESHOLD: u64 = 1 << 20;

/// blake3 hex digest of a file: memory-mapped and hashed on all rayon threads when large.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update(&std::fs::read(path)?);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// blake3 hex digest of bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_paths_agree_with_one_shot() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 10, (MMAP_THRESHOLD as usize) + 12345] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{size}"));
            std::fs::write(&p, &data).unwrap();
            assert_eq!(hash_file(&p).unwrap(), hash_bytes(&data));
        }
    }
}
