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
                Err(crate::MlError::Device("device `cuda` requested but libtorch sees no CUDA device (is this a CUDA build? see README)".into()))
            }
        }
        s => match s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if (n as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(n)),
            Some(n) => Err(crate::MlError::Device(format!(
                "device cuda:{n} not available ({} CUDA devices)",
                tch::Cuda::device_count()
            ))),
            None => Err(crate::MlError::Device(format!(
                "unknown device `{s}` (auto, cpu, cuda, cuda:N)"
            ))),
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

/// Uses the threads the scheduler granted this stage; [`adapt_threads`] lowers the count while
/// other processes keep the cores busy (unless `CAMU_ADAPTIVE_THREADS=0`).
pub fn set_threads(n: usize) {
    let n = n.max(1);
    tch::set_num_threads(n as i32);
    tch::set_num_interop_threads(1);
    let adaptive = std::env::var("CAMU_ADAPTIVE_THREADS").map_or(true, |v| v != "0");
    let mut g = GOVERNOR.lock().unwrap_or_else(|e| e.into_inner());
    *g = (adaptive && n > 1).then(|| Governor::new(n)).flatten();
}

/// Called between steps: matches the thread count to the cores other processes leave free.
///
/// OpenMP's threads meet at a barrier after every operator, so when another process takes one
/// of two cores a 2-thread step waits for the preempted thread each time: measured beside a
/// 2-thread CPU hog, a 2-thread training stage kept about 20% of its quiet throughput and a
/// 1-thread one about 45%. The count is re-read every second from /proc/stat, and it returns to
/// the grant when the cores are free again. Results then depend on the thread count in their last
/// bits, as they already do on `resources.cpus`.
pub fn adapt_threads() {
    let mut g = GOVERNOR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(gov) = g.as_mut() {
        gov.tick();
    }
}

static GOVERNOR: std::sync::Mutex<Option<Governor>> = std::sync::Mutex::new(None);

struct Governor {
    granted: usize,
    current: usize,
    cores: f64,
    last: std::time::Instant,
    sample: CpuSample,
}

/// Busy and total jiffies of the machine, and this process's own.
#[derive(Clone, Copy)]
struct CpuSample {
    busy: u64,
    total: u64,
    own: u64,
}

impl CpuSample {
    fn read() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4).unwrap_or(&0);
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name (which ends at the last ')'): state is the first,
        // utime the 12th and stime the 13th.
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        let own = ticks(11)? + ticks(12)?;
        Some(CpuSample {
            busy: total - idle,
            total,
            own,
        })
    }
}

impl Governor {
    fn new(granted: usize) -> Option<Governor> {
        let cores = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count() as f64;
        Some(Governor {
            granted,
            current: granted,
            cores,
            last: std::time::Instant::now(),
            sample: CpuSample::read()?,
        })
    }

    fn tick(&mut self) {
        if self.last.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        let Some(now) = CpuSample::read() else {
            return;
        };
        let was = std::mem::replace(&mut self.sample, now);
        self.last = std::time::Instant::now();
        let total = now.total.saturating_sub(was.total);
        if total == 0 {
            return;
        }
        // /proc/stat's total counts every core: others' share in cores.
        let others = now
            .busy
            .saturating_sub(was.busy)
            .saturating_sub(now.own - was.own) as f64
            / total as f64
            * self.cores;
        let free = (self.cores - others).round().max(1.0) as usize;
        let want = free.min(self.granted);
        if want != self.current {
            tracing::info!(
                threads = want,
                granted = self.granted,
                other_cores_busy = format!("{others:.1}"),
                "thread count adapted to the cores other processes leave free"
            );
            tch::set_num_threads(want as i32);
            self.current = want;
        }
    }
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
