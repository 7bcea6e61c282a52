//! Parsers for the IDX format (MNIST family) and the CIFAR binary format.

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error("{file}: not an IDX file of unsigned bytes (magic {magic:02x?})")]
    BadMagic { file: String, magic: [u8; 4] },
    #[error("{file}: expected {expected} dimensions, found {found}")]
    Dims {
        file: String,
        expected: usize,
        found: usize,
    },
    #[error("{file}: header says {expected} bytes of data, file has {found}")]
    Length {
        file: String,
        expected: usize,
        found: usize,
    },
    #[error("{file}: label {label} at index {index} is not below {classes}")]
    Label {
        file: String,
        label: u8,
        index: usize,
        classes: usize,
    },
    #[error("{file}: {cause}")]
    Other { file: String, cause: String },
}

/// A decoded IDX array of u8: its shape and data.
#[derive(Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses an uncompressed IDX file: two zero bytes, type 0x08 (u8), dimension count, one
/// big-endian u32 per dimension, then the data.
pub fn parse_idx(bytes: &[u8], file: &str, expect_dims: usize) -> Result<Idx, FormatError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        let mut magic = [0u8; 4];
        for (m, b) in magic.iter_mut().zip(bytes) {
            *m = *b;
        }
        return Err(FormatError::BadMagic {
            file: file.into(),
            magic,
        });
    }
    let ndim = bytes[3] as usize;
    if ndim != expect_dims {
        return Err(FormatError::Dims {
            file: file.into(),
            expected: expect_dims,
            found: ndim,
        });
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(FormatError::Length {
            file: file.into(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    if bytes.len() - header != n {
        return Err(FormatError::Length {
            file: file.into(),
            expected: n,
            found: bytes.len() - header,
        });
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Checks every label is a valid class.
pub fn check_labels(labels: &[u8], classes: usize, file: &str) -> Result<(), FormatError> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(index) => Err(FormatError::Label {
            file: file.into(),
            label: labels[index],
            index,
            classes,
        }),
        None => Ok(()),
    }
}

/// Decompresses a gzip file's bytes.
pub fn gunzip(bytes: &[u8], file: &str) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::Other {
            file: file.into(),
            cause: format!("not a valid gzip stream: {e}"),
        })?;
    Ok(out)
}

/// Images and labels of one CIFAR binary batch file. Each record is `label_bytes` label bytes
/// (CIFAR-10: 1; CIFAR-100: coarse then fine, 2) then 3072 pixel bytes (R, G, B planes of 32x32).
pub fn parse_cifar_batch(
    bytes: &[u8],
    file: &str,
    label_bytes: usize,
    classes: usize,
) -> Result<(Vec<u8>, Vec<u8>), FormatError> {
    const PIXELS: usize = 3 * 32 * 32;
    let rec = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(FormatError::Length {
            file: file.into(),
            expected: bytes.len().div_ceil(rec) * rec,
            found: bytes.len(),
        });
    }
    let n = bytes.len() / rec;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for r in bytes.chunks_exact(rec) {
        // CIFAR-100 gives (coarse, fine); the fine label is the class.
        labels.push(r[label_bytes - 1]);
        images.extend_from_slice(&r[label_bytes..]);
    }
    check_labels(&labels, classes, file)?;
    Ok((images, labels))
}

/// Reads the named members of a .tar.gz archive into memory.
pub fn read_tar_gz(
    bytes: &[u8],
    file: &str,
    wanted: &[&str],
) -> Result<Vec<(String, Vec<u8>)>, FormatError> {
    let err = |cause: String| FormatError::Other {
        file: file.into(),
        cause,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut found = Vec::new();
    for entry in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut entry = entry.map_err(|e| err(format!("corrupt archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| err(e.to_string()))?
            .to_string_lossy()
            .to_string();
        if let Some(w) = wanted.iter().find(|w| path.ends_with(*w)) {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| err(format!("corrupt archive member {path}: {e}")))?;
            found.push((w.to_string(), data));
        }
    }
    for w in wanted {
        if !found.iter().any(|(n, _)| n == w) {
            return Err(err(format!("archive has no member `{w}`")));
        }
    }
    found.sort_by_key(|(n, _)| wanted.iter().position(|w| w == n));
    Ok(found)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An IDX file of u8 with the given dimensions.
    pub fn make_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn idx_roundtrip_and_errors() {
        let data: Vec<u8> = (0..2 * 28 * 28).map(|i| i as u8).collect();
        let f = make_idx(&[2, 28, 28], &data);
        let idx = parse_idx(&f, "x", 3).unwrap();
        assert_eq!(idx.dims, [2, 28, 28]);
        assert_eq!(idx.data, data);
        assert!(matches!(
            parse_idx(&f, "x", 1),
            Err(FormatError::Dims { .. })
        ));
        assert!(matches!(
            parse_idx(&f[..f.len() - 1], "x", 3),
            Err(FormatError::Length { .. })
        ));
        let mut bad = f.clone();
        bad[2] = 0x0d;
        assert!(matches!(
            parse_idx(&bad, "x", 3),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(check_labels(&[1, 9, 10], 10, "l").is_err());
    }

    #[test]
    fn cifar_records() {
        let mut bytes = Vec::new();
        for (coarse, fine) in [(3u8, 42u8), (1, 7)] {
            bytes.push(coarse);
            bytes.push(fine);
            bytes.extend(std::iter::repeat_n(fine, 3072));
        }
        let (img, lab) = parse_cifar_batch(&bytes, "b", 2, 100).unwrap();
        assert_eq!(lab, [42, 7]);
        assert_eq!(img.len(), 2 * 3072);
        assert_eq!(img[3072], 7);
        assert!(parse_cifar_batch(&bytes[1..], "b", 2, 100).is_err());
        assert!(parse_cifar_batch(&bytes, "b", 2, 10).is_err());
    }
}
