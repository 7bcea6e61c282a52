//! Shared machinery of the ML stages: devices, threads, batching, inference.

use crate::data::Family;
use crate::models::{Model, prepare};
use tch::{Device, Kind, Tensor};

/// Loads libtorch's CUDA library into the process if it is there. A CPU build of the binary links
/// only libtorch_cpu, so CUDA kernels become available only once libtorch_cuda is loaded.
fn load_cuda_library() {
    let name = c"libtorch_cuda.so";
    // SAFETY: dlopen with a valid C string; a null result just means it is absent.
    let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if !h.is_null() {
        tracing::info!("loaded libtorch_cuda.so");
    }
}

/// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
pub fn device(spec: &str) -> Result<Device, crate::MlError> {
    if spec != "cpu" {
        load_cuda_library();
    }
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" | "gpu" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err("device `cuda` requested but libtorch sees no CUDA device (is this a CUDA build? see README)".into())
            }
        }
        s => match s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if (n as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(n)),
            Some(n) => Err(format!(
                "device cuda:{n} not available ({} CUDA devices)",
                tch::Cuda::device_count()
            )
            .into()),
            None => Err(format!("unknown device `{s}` (auto, cpu, cuda, cuda:N)").into()),
        },
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}

/// Uses exactly the threads the scheduler granted this stage.
pub fn set_threads(n: usize) {
    tch::set_num_threads(n.max(1) as i32);
    tch::set_num_interop_threads(1);
}

/// Index batches over `idx` (shuffled with the global libtorch generator when `shuffle`).
pub fn batches(idx: &Tensor, batch: i64, shuffle: bool) -> Vec<Tensor> {
    let n = idx.size()[0];
    let order = if shuffle {
        idx.index_select(0, &Tensor::randperm(n, (Kind::Int64, Device::Cpu)))
    } else {
        idx.shallow_clone()
    };
    let mut out = Vec::with_capacity((n / batch.max(1) + 1) as usize);
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        out.push(order.narrow(0, start, len));
        start += len;
    }
    out
}

/// Logits and embeddings of a model (eval mode, no gradients) on u8 images, returned on the CPU.
pub fn infer(model: &Model, x: &Tensor, family: Family, batch: i64) -> (Tensor, Tensor) {
    let _guard = tch::no_grad_guard();
    let n = x.size()[0];
    let all = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let (mut logits, mut embs) = (Vec::new(), Vec::new());
    for b in batches(&all, batch, false) {
        let xb = prepare(
            &x.index_select(0, &b),
            family,
            model.spec.arch,
            false,
            model.device(),
        );
        let (l, e) = model.forward(&xb, false);
        logits.push(l.to_device(Device::Cpu));
        embs.push(e.to_device(Device::Cpu));
    }
    if logits.is_empty() {
        let k = model.spec.classes;
        return (
            Tensor::zeros([0, k], (Kind::Float, Device::Cpu)),
            Tensor::zeros([0, 1], (Kind::Float, Device::Cpu)),
        );
    }
    (Tensor::cat(&logits, 0), Tensor::cat(&embs, 0))
}

/// Accuracy of logits against labels (NaN for an empty set or any non-finite logit).
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    let n = labels.size()[0];
    // No accuracy from non-finite logits: NaN (recorded as null), never argmax's class 0.
    if n == 0 || logits.isfinite().all().int64_value(&[]) == 0 {
        return f64::NAN;
    }
    logits
        .argmax(1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Double)
        .sum(Kind::Double)
        .double_value(&[])
        / n as f64
}

pub use camu_lab::protocol::arch;

pub fn idx_tensor(v: &[i64]) -> Tensor {
    Tensor::from_slice(v)
}
