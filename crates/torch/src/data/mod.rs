//! Datasets: where they come from, how they are verified and decoded, and the in-memory form
//! (u8 image tensors N x C x H x W, i64 labels) the ML stages work on.

pub mod download;
pub mod formats;
pub mod split;

use download::{FileSpec, Source};
use formats::FormatError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub use camu_lab::protocol::{DATASETS, Family};

/// What a decoded dataset is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub name: String,
    pub family: Family,
    pub classes: i64,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    pub n_train: i64,
    pub n_test: i64,
}

pub struct Dataset {
    pub meta: Meta,
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Download(#[from] download::DownloadError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
    #[error("unknown dataset `{0}` (known: mnist, fashion_mnist, cifar10, cifar100, synthetic)")]
    Unknown(String),
}

fn spec(name: &str, md5: &str, payload: Option<&str>) -> FileSpec {
    FileSpec {
        name: name.into(),
        md5: md5.into(),
        payload_md5: payload.map(String::from),
    }
}

/// Canonical sources and checksums. MNIST and Fashion-MNIST: the md5s torchvision checks, plus the
/// md5s of the decompressed payloads (shared/reference/datasets.md), which accept re-compressed
/// copies such as Debian's. CIFAR: the md5s the dataset authors publish for the binary versions
/// (https://www.cs.toronto.edu/~kriz/cifar.html).
pub fn source(dataset: &str) -> Option<Source> {
    let s = |files: Vec<FileSpec>, urls: &[&str], dirs: &[&str]| Source {
        dataset: dataset.into(),
        files,
        urls: urls.iter().map(|u| u.to_string()).collect(),
        system_dirs: dirs.iter().map(PathBuf::from).collect(),
    };
    Some(match dataset {
        "mnist" => s(
            vec![
                spec(
                    "train-images-idx3-ubyte.gz",
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    None,
                ),
                spec(
                    "train-labels-idx1-ubyte.gz",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    Some("a25bea736e30d166cdddb491f175f624"),
                ),
                spec(
                    "t10k-images-idx3-ubyte.gz",
                    "9fb629c4189551a2d022fa330f9573f3",
                    Some("2646ac647ad5339dbf082846283269ea"),
                ),
                spec(
                    "t10k-labels-idx1-ubyte.gz",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                    Some("27ae3e4e09519cfbb04c329615203637"),
                ),
            ],
            &[
                "https://ossci-datasets.s3.amazonaws.com/mnist",
                "http://yann.lecun.com/exdb/mnist",
            ],
            &["/usr/share/datasets/mnist"],
        ),
        "fashion_mnist" => s(
            vec![
                spec(
                    "train-images-idx3-ubyte.gz",
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    Some("f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                ),
                spec(
                    "train-labels-idx1-ubyte.gz",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    Some("9018921c3c673c538a1fc5bad174d6f9"),
                ),
                spec(
                    "t10k-images-idx3-ubyte.gz",
                    "bef4ecab320f06d8554ea6380940ec79",
                    Some("8181f5470baa50b63fa0f6fddb340f0a"),
                ),
                spec(
                    "t10k-labels-idx1-ubyte.gz",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                    Some("15d484375f8d13e6eb1aabb0c3f46965"),
                ),
            ],
            &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"],
            &["/usr/share/datasets/fashion-mnist"],
        ),
        "cifar10" => s(
            vec![spec(
                "cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
                None,
            )],
            &["https://www.cs.toronto.edu/~kriz"],
            &[],
        ),
        "cifar100" => s(
            vec![spec(
                "cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
                None,
            )],
            &["https://www.cs.toronto.edu/~kriz"],
            &[],
        ),
        _ => return None,
    })
}

fn u8_images(data: Vec<u8>, n: i64, c: i64, h: i64, w: i64) -> Tensor {
    Tensor::from_slice(&data).view([n, c, h, w])
}

fn labels(data: &[u8]) -> Tensor {
    Tensor::from_slice(data).to_kind(Kind::Int64)
}

/// Decodes the four IDX files of an MNIST-family dataset.
pub fn decode_idx_set(name: &str, files: &[PathBuf]) -> Result<Dataset, DataError> {
    let read = |p: &PathBuf| -> Result<Vec<u8>, DataError> {
        let bytes = std::fs::read(p).map_err(|e| DataError::Io {
            path: p.clone(),
            cause: e.to_string(),
        })?;
        Ok(formats::gunzip(&bytes, &p.display().to_string())?)
    };
    let label = |p: &PathBuf| p.display().to_string();
    let tr_x = formats::parse_idx(&read(&files[0])?, &label(&files[0]), 3)?;
    let tr_y = formats::parse_idx(&read(&files[1])?, &label(&files[1]), 1)?;
    let te_x = formats::parse_idx(&read(&files[2])?, &label(&files[2]), 3)?;
    let te_y = formats::parse_idx(&read(&files[3])?, &label(&files[3]), 1)?;
    for (x, y, f) in [(&tr_x, &tr_y, &files[1]), (&te_x, &te_y, &files[3])] {
        if x.dims[0] != y.dims[0] {
            return Err(FormatError::Other {
                file: label(f),
                cause: format!("{} labels for {} images", y.dims[0], x.dims[0]),
            }
            .into());
        }
        formats::check_labels(&y.data, 10, &label(f))?;
    }
    let (h, w) = (tr_x.dims[1] as i64, tr_x.dims[2] as i64);
    let (n_train, n_test) = (tr_x.dims[0] as i64, te_x.dims[0] as i64);
    Ok(Dataset {
        meta: Meta {
            name: name.into(),
            family: Family::Mnist,
            classes: 10,
            channels: 1,
            height: h,
            width: w,
            n_train,
            n_test,
        },
        train_x: u8_images(tr_x.data, n_train, 1, h, w),
        train_y: labels(&tr_y.data),
        test_x: u8_images(
            te_x.data,
            n_test,
            1,
            te_x.dims[1] as i64,
            te_x.dims[2] as i64,
        ),
        test_y: labels(&te_y.data),
    })
}

/// Decodes a CIFAR binary archive (cifar-10-binary.tar.gz or cifar-100-binary.tar.gz).
pub fn decode_cifar(name: &str, archive: &Path) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(archive).map_err(|e| DataError::Io {
        path: archive.to_path_buf(),
        cause: e.to_string(),
    })?;
    let file = archive.display().to_string();
    let (train_files, test_files, label_bytes, classes): (Vec<&str>, Vec<&str>, usize, i64) =
        if name == "cifar100" {
            (vec!["train.bin"], vec!["test.bin"], 2, 100)
        } else {
            (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                vec!["test_batch.bin"],
                1,
                10,
            )
        };
    let mut wanted = train_files.clone();
    wanted.extend(&test_files);
    let members = formats::read_tar_gz(&bytes, &file, &wanted)?;
    let parts = |names: &[&str]| -> Result<(Vec<u8>, Vec<u8>), DataError> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (n, data) in members.iter().filter(|(n, _)| names.contains(&n.as_str())) {
            let (xi, yi) = formats::parse_cifar_batch(
                data,
                &format!("{file}:{n}"),
                label_bytes,
                classes as usize,
            )?;
            x.extend(xi);
            y.extend(yi);
        }
        Ok((x, y))
    };
    let (trx, try_) = parts(&train_files)?;
    let (tex, tey) = parts(&test_files)?;
    let (n_train, n_test) = (try_.len() as i64, tey.len() as i64);
    Ok(Dataset {
        meta: Meta {
            name: name.into(),
            family: Family::Cifar,
            classes,
            channels: 3,
            height: 32,
            width: 32,
            n_train,
            n_test,
        },
        train_x: u8_images(trx, n_train, 3, 32, 32),
        train_y: labels(&try_),
        test_x: u8_images(tex, n_test, 3, 32, 32),
        test_y: labels(&tey),
    })
}

/// A small generated image set for fast tests: each class is a random 28x28 template; samples are
/// the template plus seeded noise. Learnable in seconds, so tests can assert real learning.
pub fn synthetic(seed: i64, classes: i64, n_train: i64, n_test: i64, noise: f64) -> Dataset {
    tch::manual_seed(seed);
    let templates = Tensor::rand([classes, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
    let make = |n: i64| {
        let y = Tensor::randint(classes, [n], (Kind::Int64, tch::Device::Cpu));
        let base = templates.index_select(0, &y);
        let x = (base * (1.0 - noise)
            + Tensor::rand([n, 1, 28, 28], (Kind::Float, tch::Device::Cpu)) * noise)
            .clamp(0.0, 1.0)
            * 255.0;
        (x.round().to_kind(Kind::Uint8), y)
    };
    let (train_x, train_y) = make(n_train);
    let (test_x, test_y) = make(n_test);
    Dataset {
        meta: Meta {
            name: "synthetic".into(),
            family: Family::Mnist,
            classes,
            channels: 1,
            height: 28,
            width: 28,
            n_train,
            n_test,
        },
        train_x,
        train_y,
        test_x,
        test_y,
    }
}

impl Dataset {
    /// Writes `dataset.safetensors` and `dataset.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DataError> {
        let st = dir.join("dataset.safetensors");
        let io = |p: &Path, e: String| DataError::Io {
            path: p.to_path_buf(),
            cause: e,
        };
        Tensor::write_safetensors(
            &[
                ("train_x", &self.train_x),
                ("train_y", &self.train_y),
                ("test_x", &self.test_x),
                ("test_y", &self.test_y),
            ],
            &st,
        )
        .map_err(|e| io(&st, e.to_string()))?;
        let meta = dir.join("dataset.json");
        let json = serde_json::to_vec_pretty(&self.meta).map_err(|e| io(&meta, e.to_string()))?;
        std::fs::write(&meta, json).map_err(|e| io(&meta, e.to_string()))
    }

    /// Reads what [`Dataset::save`] wrote.
    pub fn load(dir: &Path) -> Result<Dataset, DataError> {
        let io = |p: &Path, e: String| DataError::Io {
            path: p.to_path_buf(),
            cause: e,
        };
        let mp = dir.join("dataset.json");
        let meta: Meta =
            serde_json::from_slice(&std::fs::read(&mp).map_err(|e| io(&mp, e.to_string()))?)
                .map_err(|e| io(&mp, e.to_string()))?;
        let st = dir.join("dataset.safetensors");
        let tensors = Tensor::read_safetensors(&st).map_err(|e| io(&st, e.to_string()))?;
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| io(&st, format!("missing tensor `{name}`")))
        };
        Ok(Dataset {
            meta,
            train_x: get("train_x")?,
            train_y: get("train_y")?,
            test_x: get("test_x")?,
            test_y: get("test_y")?,
        })
    }
}

/// Fetches (or finds) and decodes a real dataset.
pub fn obtain(name: &str, data_dir: &Path, mirrors: &[String]) -> Result<Dataset, DataError> {
    let src = source(name).ok_or_else(|| DataError::Unknown(name.into()))?;
    obtain_from(&src, data_dir, mirrors)
}

/// As [`obtain`], from an explicit source (tests use loopback servers with their own checksums).
pub fn obtain_from(
    src: &Source,
    data_dir: &Path,
    mirrors: &[String],
) -> Result<Dataset, DataError> {
    let store = data_dir.join(&src.dataset);
    let mut paths = Vec::new();
    for f in &src.files {
        paths.push(download::fetch(src, f, &store, mirrors)?);
    }
    if src.dataset.starts_with("cifar") {
        decode_cifar(&src.dataset, &paths[0])
    } else {
        decode_idx_set(&src.dataset, &paths)
    }
}
