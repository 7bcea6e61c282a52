//! Dataset download against a loopback HTTP server serving generated files in the real formats:
//! success, mirror fallback, 404, truncated transfer, checksum mismatch.

use camu_torch::data::download::{FileSpec, Source};
use camu_torch::data::{self, DataError};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The four MNIST-format files: 20 training and 8 test images of 28x28.
fn mnist_files() -> Vec<(String, Vec<u8>)> {
    let img = |n: u32| {
        idx(
            &[n, 28, 28],
            &(0..n * 784).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
        )
    };
    let lab = |n: u32| idx(&[n], &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    vec![
        ("train-images-idx3-ubyte.gz".into(), gz(&img(20))),
        ("train-labels-idx1-ubyte.gz".into(), gz(&lab(20))),
        ("t10k-images-idx3-ubyte.gz".into(), gz(&img(8))),
        ("t10k-labels-idx1-ubyte.gz".into(), gz(&lab(8))),
    ]
}

fn source(files: &[(String, Vec<u8>)], urls: Vec<String>) -> Source {
    Source {
        dataset: "mnist".into(),
        files: files
            .iter()
            .map(|(n, b)| FileSpec {
                name: n.clone(),
                md5: md5_hex(b),
                payload_md5: None,
            })
            .collect(),
        urls,
        system_dirs: vec![],
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Serve,
    Truncate,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 serving `files` under `/`; unknown paths get 404.
fn serve(files: HashMap<String, Vec<u8>>, mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_string();
                match files.get(&path) {
                    Some(body) => {
                        let send = match mode {
                            Mode::Serve => &body[..],
                            Mode::Truncate => &body[..body.len() / 2],
                        };
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(send);
                    }
                    None => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    format!("http://{addr}/data")
}

fn serve_files(files: &[(String, Vec<u8>)], mode: Mode) -> String {
    serve(
        files
            .iter()
            .map(|(n, b)| (format!("data/{n}"), b.clone()))
            .collect(),
        mode,
    )
}

fn store_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn downloads_verifies_and_decodes() {
    let files = mnist_files();
    let url = serve_files(&files, Mode::Serve);
    let dir = tempfile::tempdir().unwrap();
    let ds = data::obtain_from(&source(&files, vec![url]), dir.path(), &[]).unwrap();
    assert_eq!(ds.train_x.size(), [20, 1, 28, 28]);
    assert_eq!(ds.test_y.size(), [8]);
    assert_eq!(Vec::<i64>::try_from(&ds.train_y).unwrap()[..3], [0, 1, 2]);
    // Kept in the store: a second call needs no server.
    let again = data::obtain_from(
        &source(&files, vec!["http://127.0.0.1:9/none".into()]),
        dir.path(),
        &[],
    );
    assert!(again.is_ok(), "stored files were not reused");
}

#[test]
fn mirror_fallback_after_404() {
    let files = mnist_files();
    let empty = serve(HashMap::new(), Mode::Serve);
    let good = serve_files(&files, Mode::Serve);
    let dir = tempfile::tempdir().unwrap();
    // A mirror directory without the files, a 404 mirror, then the good one.
    let missing_dir = tempfile::tempdir().unwrap();
    let mirrors = vec![missing_dir.path().display().to_string(), empty];
    let src = source(&files, vec![good]);
    assert!(data::obtain_from(&src, dir.path(), &mirrors).is_ok());

    // A directory mirror with the files works without any server.
    let local = tempfile::tempdir().unwrap();
    for (n, b) in &files {
        std::fs::write(local.path().join(n), b).unwrap();
    }
    let dir2 = tempfile::tempdir().unwrap();
    let src = source(&files, vec!["http://127.0.0.1:9/unreachable".into()]);
    assert!(data::obtain_from(&src, dir2.path(), &[local.path().display().to_string()]).is_ok());
}

#[test]
fn not_found_is_a_clear_error() {
    let files = mnist_files();
    let url = serve(HashMap::new(), Mode::Serve);
    let dir = tempfile::tempdir().unwrap();
    let err = data::obtain_from(&source(&files, vec![url]), dir.path(), &[])
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Download(_)));
    assert!(
        msg.contains("train-images-idx3-ubyte.gz") && msg.contains("HTTP 404"),
        "{msg}"
    );
    assert!(
        store_files(&dir.path().join("mnist")).is_empty(),
        "something was stored"
    );
}

#[test]
fn truncated_transfer_is_rejected() {
    let files = mnist_files();
    let url = serve_files(&files, Mode::Truncate);
    let dir = tempfile::tempdir().unwrap();
    let msg = data::obtain_from(&source(&files, vec![url]), dir.path(), &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("truncated") || msg.contains("broke off"),
        "{msg}"
    );
    assert!(store_files(&dir.path().join("mnist")).is_empty());
}

#[test]
fn checksum_mismatch_names_both_hashes() {
    let files = mnist_files();
    let url = serve_files(&files, Mode::Serve);
    let mut src = source(&files, vec![url]);
    let expected = "0123456789abcdef0123456789abcdef".to_string();
    src.files[0].md5 = expected.clone();
    let dir = tempfile::tempdir().unwrap();
    let msg = data::obtain_from(&src, dir.path(), &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&expected) && msg.contains(&md5_hex(&files[0].1)),
        "{msg}"
    );
    assert!(store_files(&dir.path().join("mnist")).is_empty());
}

#[test]
fn cifar_archive_decodes() {
    // A CIFAR-10 binary archive in the real layout, 3 records per batch file.
    let mut tar = tar::Builder::new(Vec::new());
    let batch = |seed: u8| -> Vec<u8> {
        (0..3u8)
            .flat_map(|r| std::iter::once((r + seed) % 10).chain(std::iter::repeat_n(r, 3072)))
            .collect()
    };
    for name in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ] {
        let b = batch(name.len() as u8);
        let mut h = tar::Header::new_gnu();
        h.set_size(b.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}.bin"), &b[..])
            .unwrap();
    }
    let archive = gz(&tar.into_inner().unwrap());
    let files = vec![("cifar-10-binary.tar.gz".to_string(), archive)];
    let url = serve_files(&files, Mode::Serve);
    let mut src = source(&files, vec![url]);
    src.dataset = "cifar10".into();
    let dir = tempfile::tempdir().unwrap();
    let ds = data::obtain_from(&src, dir.path(), &[]).unwrap();
    assert_eq!(ds.train_x.size(), [15, 3, 32, 32]);
    assert_eq!(ds.test_x.size(), [3, 3, 32, 32]);
    assert_eq!(ds.meta.classes, 10);
    // Pixel planes land in C,H,W order: record r is all r.
    assert_eq!(ds.train_x.get(1).max().int64_value(&[]), 1);
}
