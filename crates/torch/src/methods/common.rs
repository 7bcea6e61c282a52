//! Building blocks the baseline methods share: optimizers, passes over index sets, relabelling,
//! temperature-scaled distillation, per-parameter gradient statistics.

use super::Context;
use crate::ml::{batches, idx_tensor};
use crate::models::{Model, prepare};
use camu_core::progress::StageProgress;
use camu_lab::methods::Optimizer;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// SGD with momentum and weight decay, as the baselines' public code uses.
pub fn sgd(
    vs: &nn::VarStore,
    lr: f64,
    momentum: f64,
    wd: f64,
) -> Result<nn::Optimizer, crate::MlError> {
    nn::Sgd {
        momentum,
        wd,
        ..Default::default()
    }
    .build(vs, lr)
    .map_err(crate::MlError::from)
}

/// A method's optimizer: SGD with `momentum`, or Adam (which ignores it).
pub fn optimizer(
    kind: Optimizer,
    vs: &nn::VarStore,
    lr: f64,
    momentum: f64,
    wd: f64,
) -> Result<nn::Optimizer, crate::MlError> {
    match kind {
        Optimizer::Sgd => sgd(vs, lr, momentum, wd),
        Optimizer::Adam => crate::train::adam(vs, lr, wd),
    }
}

/// A prepared batch: float inputs and labels on the model's device.
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
}

impl Context<'_> {
    /// Training samples `idx` (CPU indices) as a prepared batch; labels may be overridden.
    pub fn batch(&self, idx: &Tensor, labels: Option<&Tensor>) -> Batch {
        self.train_batch(idx, labels, false)
    }
    /// [`Context::batch`], with the training augmentation (a fresh random crop and flip on
    /// CIFAR) when `augment`.
    pub fn train_batch(&self, idx: &Tensor, labels: Option<&Tensor>, augment: bool) -> Batch {
        let x = prepare(
            &self.data.train_x.index_select(0, idx),
            self.family(),
            self.original.spec.arch,
            augment,
            self.device,
        );
        let y = match labels {
            Some(l) => l.index_select(0, idx),
            None => self.data.train_y.index_select(0, idx),
        };
        Batch {
            x,
            y: y.to_device(self.device),
        }
    }

    pub fn forget_idx(&self) -> Tensor {
        idx_tensor(&self.split.forget)
    }
    pub fn remain_idx(&self) -> Tensor {
        idx_tensor(&self.split.remain)
    }
    /// A seeded random fraction of Dr (1.0: all of it).
    pub fn remain_subset(&self, fraction: f64) -> Tensor {
        let r = self.remain_idx();
        if fraction >= 1.0 {
            return r;
        }
        let n = r.size()[0];
        let k = ((n as f64 * fraction).round() as i64).clamp(1, n);
        r.index_select(
            0,
            &Tensor::randperm(n, (Kind::Int64, Device::Cpu)).narrow(0, 0, k),
        )
    }
    /// Training labels with every Df sample moved to a uniformly random *other* class.
    pub fn wrong_labels_for_forget(&self) -> Tensor {
        let y = self.data.train_y.shallow_clone();
        let f = self.forget_idx();
        let yf = y.index_select(0, &f);
        let k = self.classes();
        let r = Tensor::randint(k - 1, yf.size(), (Kind::Int64, Device::Cpu));
        let wrong = &r + r.ge_tensor(&yf).to_kind(Kind::Int64);
        y.index_copy(0, &f, &wrong)
    }
    /// A fixed probe batch (up to 64 samples of Df and 64 of Dr) on which a divergence guard
    /// checks that the model's outputs stay finite.
    pub fn probe(&self) -> Tensor {
        let take = |v: &[i64]| v[..v.len().min(64)].to_vec();
        let mut idx = take(&self.split.forget);
        idx.extend(take(&self.split.remain));
        self.batch(&idx_tensor(&idx), None).x
    }
}

/// Labels drawn uniformly over all classes (possibly the true one) for every forget batch of every
/// epoch, as SalUn's RL code draws them. Remembers each sample's last draw, so a run can record
/// how often a sample's label changed from one epoch to the next (about (K-1)/K when redrawn).
pub struct Relabeler {
    classes: i64,
    last: Vec<i64>,
    changed: u64,
    compared: u64,
}

impl Relabeler {
    pub fn new(ctx: &Context<'_>) -> Relabeler {
        Relabeler {
            classes: ctx.classes(),
            last: vec![-1; ctx.data.meta.n_train as usize],
            changed: 0,
            compared: 0,
        }
    }
    /// Fresh labels for the samples `idx` (CPU indices), on `device`.
    pub fn draw(&mut self, idx: &Tensor, device: Device) -> Tensor {
        let y = Tensor::randint(self.classes, idx.size(), (Kind::Int64, Device::Cpu));
        let ids = Vec::<i64>::try_from(idx).unwrap_or_default();
        let ys = Vec::<i64>::try_from(&y).unwrap_or_default();
        for (&i, &l) in ids.iter().zip(&ys) {
            let prev = &mut self.last[i as usize];
            if *prev >= 0 {
                self.compared += 1;
                self.changed += u64::from(*prev != l);
            }
            *prev = l;
        }
        y.to_device(device)
    }
    /// The training labels with a fresh draw for every sample of `idx` (CPU), as the reference's
    /// CIFAR-100 branch relabels its forget set once per epoch.
    pub fn relabelled(&mut self, ctx: &Context<'_>, idx: &Tensor) -> Tensor {
        let drawn = self.draw(idx, Device::Cpu);
        ctx.data.train_y.index_copy(0, idx, &drawn)
    }
    /// Fraction of redraws that gave a sample another label than its previous draw.
    pub fn change_rate(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.changed as f64 / self.compared as f64)
    }
}

thread_local! {
    /// `Some` while a [`DivergenceRecord`] lives: then where a pass's loss first became non-finite.
    static DIVERGENCE: std::cell::RefCell<Option<Option<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// While it lives, a non-finite loss in a pass ends that pass and every later one at once, instead
/// of failing the run: the model keeps the weights the failing step left (in practice non-finite),
/// the `unlearn` stage saves it, and its evaluation records the model as diverged, so a `select`
/// stage excludes the trial instead of the whole search stopping at one bad setting.
pub struct DivergenceRecord(());

impl DivergenceRecord {
    pub fn start() -> DivergenceRecord {
        DIVERGENCE.with_borrow_mut(|d| *d = Some(None));
        DivergenceRecord(())
    }
    /// Where the loss became non-finite, if it did.
    pub fn at(&self) -> Option<String> {
        DIVERGENCE.with_borrow(|d| d.clone().flatten())
    }
}

impl Drop for DivergenceRecord {
    fn drop(&mut self) {
        DIVERGENCE.with_borrow_mut(|d| *d = None);
    }
}

/// One pass of `step` over shuffled batches of `idx`, with a progress line.
pub fn pass(
    label: &str,
    idx: &Tensor,
    batch: i64,
    step: impl FnMut(&Tensor) -> Result<f64, crate::MlError>,
) -> Result<f64, crate::MlError> {
    pass_in(label, &batches(idx, batch, true), step)
}

/// One pass of `step` over the given batches, with a progress line.
pub fn pass_in(
    label: &str,
    bs: &[Tensor],
    mut step: impl FnMut(&Tensor) -> Result<f64, crate::MlError>,
) -> Result<f64, crate::MlError> {
    if DIVERGENCE.with_borrow(|d| matches!(d, Some(Some(_)))) {
        return Ok(f64::NAN);
    }
    let bar = StageProgress::new(label, bs.len() as u64, "batches");
    let mut total = 0.0;
    for (k, b) in bs.iter().enumerate() {
        let l = step(b)?;
        if !l.is_finite() {
            let why = format!("{label}: loss became {l}");
            let recorded = DIVERGENCE.with_borrow_mut(|d| match d {
                Some(at) => {
                    *at = Some(why.clone());
                    true
                }
                None => false,
            });
            if recorded {
                tracing::warn!("{why}: the run stops here and its model is kept as it is");
                return Ok(f64::NAN);
            }
            return Err(crate::MlError::Diverged(why));
        }
        total += l;
        if k % 20 == 0 {
            bar.set_message(format!("loss {:.4}", total / (k + 1) as f64));
        }
        bar.set(k as u64 + 1);
        crate::ml::adapt_threads();
    }
    let mean = total / bs.len().max(1) as f64;
    bar.finish_with(&format!("mean loss {mean:.4}"));
    Ok(mean)
}

/// Cross-entropy training pass of `model` over `idx` (labels from `labels` or the dataset),
/// batches augmented when `augment`.
#[allow(clippy::too_many_arguments)]
pub fn ce_pass(
    ctx: &Context<'_>,
    model: &Model,
    opt: &mut nn::Optimizer,
    idx: &Tensor,
    labels: Option<&Tensor>,
    batch: i64,
    augment: bool,
    label: &str,
) -> Result<f64, crate::MlError> {
    pass(label, idx, batch, |b| {
        let bt = ctx.train_batch(b, labels, augment);
        let loss = model.forward(&bt.x, true).0.cross_entropy_for_logits(&bt.y);
        opt.backward_step(&loss);
        Ok(loss.double_value(&[]))
    })
}

/// KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean (the distillation loss of SCRUB and
/// bad-teacher; `t` carries no gradient).
pub fn kl_t(teacher_logits: &Tensor, student_logits: &Tensor, temperature: f64) -> Tensor {
    let lt = (teacher_logits / temperature).log_softmax(1, Kind::Float);
    let ls = (student_logits / temperature).log_softmax(1, Kind::Float);
    (lt.exp() * (lt - ls))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
        * (temperature * temperature)
}

/// Mean over batches of squared gradients of the batch-mean cross-entropy per parameter (a
/// diagonal Fisher estimate, as the SSD public code computes it), by trainable parameter name.
/// Batches are taken in the order of `idx`, unshuffled, as SSD's loaders do.
pub fn squared_grads(
    ctx: &Context<'_>,
    model: &Model,
    idx: &Tensor,
    batch: i64,
    label: &str,
) -> Result<Vec<(String, Tensor)>, crate::MlError> {
    let params = trainable(model);
    let mut acc: Vec<Tensor> = params.iter().map(|(_, t)| t.zeros_like()).collect();
    let mut n = 0;
    pass_in(label, &batches(idx, batch, false), |b| {
        let bt = ctx.batch(b, None);
        for (_, p) in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let loss = model
            .forward(&bt.x, false)
            .0
            .cross_entropy_for_logits(&bt.y);
        loss.backward();
        tch::no_grad(|| {
            for ((_, p), a) in params.iter().zip(acc.iter_mut()) {
                let g = p.grad();
                if g.defined() {
                    *a += g.square();
                }
            }
        });
        n += 1;
        Ok(loss.double_value(&[]))
    })?;
    Ok(params
        .into_iter()
        .zip(acc)
        .map(|((name, _), a)| (name, a / n.max(1) as f64))
        .collect())
}

/// Trainable parameters by name, sorted.
pub fn trainable(model: &Model) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The published step settings of a training-based method; `with` overrides each of them.
pub struct Recipe {
    pub optimizer: Optimizer,
    pub lr: f64,
    /// SGD's momentum (unused by Adam).
    pub momentum: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
}

/// A method's starting point: a copy of f_o, its optimizer and the settings.
pub struct Setup {
    pub model: Model,
    pub opt: nn::Optimizer,
    pub lr: f64,
    pub epochs: usize,
    pub batch: i64,
}

impl Recipe {
    /// Seeds the generator, copies f_o and builds the optimizer.
    pub fn start(&self, ctx: &Context<'_>) -> Result<Setup, crate::MlError> {
        tch::manual_seed(ctx.seed);
        let model = ctx.original.duplicate().map_err(crate::MlError::from)?;
        let opt = optimizer(
            self.optimizer,
            &model.vs,
            self.lr,
            self.momentum,
            self.weight_decay,
        )?;
        Ok(Setup {
            model,
            opt,
            lr: self.lr,
            epochs: self.epochs,
            batch: self.batch_size as i64,
        })
    }
}

impl Setup {
    /// The outcome: the model, and the parameters `p` plus `extra` for the record.
    pub fn outcome(self, p: &impl serde::Serialize, extra: serde_json::Value) -> super::Outcome {
        super::Outcome {
            model: self.model,
            details: super::details(p, extra),
        }
    }
}

/// Protects a run from divergence: keeps a copy of every variable (weights and batch-norm running
/// statistics) as it was after the last good step and restores it if a step made any weight, or
/// the model's output on a fixed probe batch, non-finite (finite weights can still overflow to
/// infinite logits). The copy predates the failing step's forward pass, which in train mode
/// already updates the running statistics. Used by the unbounded ascent methods.
pub struct DivergenceGuard<'m> {
    model: &'m Model,
    probe: Tensor,
    params: Vec<Tensor>,
    backup: Vec<Tensor>,
}

impl<'m> DivergenceGuard<'m> {
    pub fn new(model: &'m Model, probe: Tensor) -> DivergenceGuard<'m> {
        let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params: Vec<Tensor> = vars.into_iter().map(|(_, t)| t).collect();
        let backup = params.iter().map(|t| t.detach().copy()).collect();
        DivergenceGuard {
            model,
            probe,
            params,
            backup,
        }
    }
    /// Remembers the current variables.
    pub fn save(&mut self) {
        tch::no_grad(|| {
            for (b, p) in self.backup.iter_mut().zip(&self.params) {
                b.copy_(p);
            }
        });
    }
    /// True if every weight and every output on the probe batch is finite.
    pub fn finite(&self) -> bool {
        let all = |t: &Tensor| t.isfinite().all().int64_value(&[]) == 1;
        self.params.iter().all(all)
            && tch::no_grad(|| all(&self.model.forward(&self.probe, false).0))
    }
    /// Puts back the variables saved last.
    pub fn restore(&mut self) {
        tch::no_grad(|| {
            for (p, b) in self.params.iter_mut().zip(&self.backup) {
                p.copy_(b);
            }
        });
    }
    /// One guarded optimizer step on `loss`; false, with the model as after the last good step,
    /// if the loss, the resulting weights or the resulting probe outputs are not finite.
    pub fn step(&mut self, opt: &mut nn::Optimizer, loss: &Tensor) -> bool {
        if loss.double_value(&[]).is_finite() {
            opt.backward_step(loss);
            if self.finite() {
                self.save();
                return true;
            }
        }
        self.restore();
        false
    }
}

/// The [`Recipe`] of a parameter struct with the usual step fields.
macro_rules! recipe {
    ($p:expr) => {
        $crate::methods::common::Recipe {
            optimizer: $p.optimizer,
            lr: $p.lr,
            momentum: $p.momentum,
            weight_decay: $p.weight_decay,
            epochs: $p.epochs,
            batch_size: $p.batch_size,
        }
    };
}
pub(crate) use recipe;
