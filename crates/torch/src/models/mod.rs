//! Models: the reference CNN (MNIST family) and ResNet-18 with the reference's ImageNet stem or a
//! 32x32 CIFAR stem. Each returns logits and the embedding CaMU's KL terms act on.

use crate::data::Family;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

pub use camu_lab::protocol::Arch;

/// What a checkpoint is, stored beside it as model.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSpec {
    pub arch: Arch,
    pub classes: i64,
    pub channels: i64,
}

trait Net: Send {
    fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor);
    /// The output of each layer the layer-wise similarity compares, in eval mode, in order.
    fn layers(&self, x: &Tensor) -> Vec<(&'static str, Tensor)>;
}

/// PyTorch's default for Conv and Linear: weight and bias uniform in +-1/sqrt(fan_in).
fn torch_default(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

fn linear(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    nn::linear(
        p,
        i,
        o,
        nn::LinearConfig {
            ws_init: torch_default(i),
            bs_init: Some(torch_default(i)),
            bias: true,
        },
    )
}

struct Cnn {
    c1: nn::Conv2D,
    c2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

impl Cnn {
    fn new(p: &nn::Path, channels: i64, classes: i64) -> Cnn {
        let conv = |p: nn::Path, i: i64, o: i64| {
            let fan_in = i * 25;
            nn::conv2d(
                p,
                i,
                o,
                5,
                nn::ConvConfig {
                    padding: 2,
                    ws_init: torch_default(fan_in),
                    bs_init: torch_default(fan_in),
                    ..Default::default()
                },
            )
        };
        Cnn {
            c1: conv(p / "conv1", channels, 16),
            c2: conv(p / "conv2", 16, 32),
            fc1: linear(p / "fc1", 32 * 7 * 7, 256),
            fc2: linear(p / "fc2", 256, 128),
            fc3: linear(p / "fc3", 128, classes),
        }
    }
}

impl Net for Cnn {
    fn forward(&self, x: &Tensor, _train: bool) -> (Tensor, Tensor) {
        let emb = x
            .apply(&self.c1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.c2)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc1);
        let logits = emb.apply(&self.fc2).apply(&self.fc3);
        (logits, emb)
    }
    fn layers(&self, x: &Tensor) -> Vec<(&'static str, Tensor)> {
        let c1 = x.apply(&self.c1).relu().max_pool2d_default(2);
        let c2 = c1.apply(&self.c2).relu().max_pool2d_default(2);
        let f1 = c2.flatten(1, -1).apply(&self.fc1);
        let f2 = f1.apply(&self.fc2);
        let f3 = f2.apply(&self.fc3);
        vec![
            ("conv1", c1),
            ("conv2", c2),
            ("fc1", f1),
            ("fc2", f2),
            ("fc3", f3),
        ]
    }
}

/// torchvision's ResNet conv init: Kaiming normal, fan-out, ReLU gain; no bias.
fn rconv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        i,
        o,
        k,
        nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ws_init: Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            ..Default::default()
        },
    )
}

struct Block {
    c1: nn::Conv2D,
    b1: nn::BatchNorm,
    c2: nn::Conv2D,
    b2: nn::BatchNorm,
    down: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(p: nn::Path, i: i64, o: i64, stride: i64) -> Block {
        let bn = |p: nn::Path| nn::batch_norm2d(p, o, Default::default());
        Block {
            c1: rconv(&p / "conv1", i, o, 3, stride, 1),
            b1: bn(&p / "bn1"),
            c2: rconv(&p / "conv2", o, o, 3, 1, 1),
            b2: bn(&p / "bn2"),
            down: (stride != 1 || i != o).then(|| {
                (
                    rconv(&p / "downsample" / "0", i, o, 1, stride, 0),
                    bn(&p / "downsample" / "1"),
                )
            }),
        }
    }
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x
            .apply(&self.c1)
            .apply_t(&self.b1, train)
            .relu()
            .apply(&self.c2)
            .apply_t(&self.b2, train);
        let skip = match &self.down {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        (y + skip).relu()
    }
}

struct ResNet18 {
    stem: nn::Conv2D,
    bn: nn::BatchNorm,
    imagenet_stem: bool,
    blocks: Vec<Block>,
    fc: nn::Linear,
}

impl ResNet18 {
    fn new(p: &nn::Path, channels: i64, classes: i64, imagenet_stem: bool) -> ResNet18 {
        let stem = if imagenet_stem {
            rconv(p / "conv1", channels, 64, 7, 2, 3)
        } else {
            rconv(p / "conv1", channels, 64, 3, 1, 1)
        };
        let mut blocks = Vec::new();
        let mut i = 64;
        for (layer, (o, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
            .into_iter()
            .enumerate()
        {
            let lp = p / format!("layer{}", layer + 1);
            blocks.push(Block::new(&lp / "0", i, o, stride));
            blocks.push(Block::new(&lp / "1", o, o, 1));
            i = o;
        }
        ResNet18 {
            stem,
            bn: nn::batch_norm2d(p / "bn1", 64, Default::default()),
            imagenet_stem,
            blocks,
            fc: linear(p / "fc", 512, classes),
        }
    }
}

impl Net for ResNet18 {
    fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = x.apply(&self.stem).apply_t(&self.bn, train).relu();
        if self.imagenet_stem {
            h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            h = b.forward(&h, train);
        }
        let emb = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let logits = emb.apply(&self.fc);
        (logits, emb)
    }
    fn layers(&self, x: &Tensor) -> Vec<(&'static str, Tensor)> {
        let mut h = x.apply(&self.stem).apply_t(&self.bn, false).relu();
        if self.imagenet_stem {
            h = h.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        let mut out = vec![("stem", h.shallow_clone())];
        for (i, pair) in self.blocks.chunks(2).enumerate() {
            for b in pair {
                h = b.forward(&h, false);
            }
            out.push((
                ["layer1", "layer2", "layer3", "layer4"][i],
                h.shallow_clone(),
            ));
        }
        let logits = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc);
        out.push(("fc", logits));
        out
    }
}

/// A model with its parameters.
pub struct Model {
    pub spec: ModelSpec,
    pub vs: nn::VarStore,
    net: Box<dyn Net>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {cause}")]
    Io { path: String, cause: String },
}

impl Model {
    /// A freshly initialised model (call `tch::manual_seed` first for reproducibility).
    pub fn new(spec: ModelSpec, device: Device) -> Model {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net: Box<dyn Net> = match spec.arch {
            Arch::Cnn => Box::new(Cnn::new(&root, spec.channels, spec.classes)),
            Arch::Resnet18 => Box::new(ResNet18::new(&root, spec.channels, spec.classes, true)),
            Arch::Resnet18Cifar => {
                Box::new(ResNet18::new(&root, spec.channels, spec.classes, false))
            }
        };
        Model { spec, vs, net }
    }

    /// (logits, embedding) of a prepared float batch.
    pub fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.net.forward(x, train)
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Each compared layer's output on a prepared batch (eval mode): conv1, conv2, fc1, fc2 and
    /// fc3 (the logits) of the CNN; the stem, layer1-4 and fc of ResNet-18.
    pub fn layers(&self, x: &Tensor) -> Vec<(&'static str, Tensor)> {
        self.net.layers(x)
    }

    /// The precision of the weights (float unless converted).
    pub fn kind(&self) -> Kind {
        self.vs
            .trainable_variables()
            .first()
            .map_or(self.vs.kind(), Tensor::kind)
    }

    /// Whether a train-mode forward depends on the batch (batch norm): then inputs cannot be
    /// concatenated into one forward without changing the result.
    pub fn has_batch_norm(&self) -> bool {
        self.spec.arch != Arch::Cnn
    }

    /// An independent copy with identical weights (and batch-norm statistics).
    pub fn duplicate(&self) -> Result<Model, ModelError> {
        let mut m = Model::new(self.spec.clone(), self.device());
        if self.kind() != m.kind() {
            m.vs.set_kind(self.kind());
        }
        m.vs.copy(&self.vs).map_err(|e| ModelError::Io {
            path: "<copy>".into(),
            cause: e.to_string(),
        })?;
        Ok(m)
    }

    /// Writes model.safetensors and model.json into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let st = dir.join("model.safetensors");
        let io = |p: &Path, e: String| ModelError::Io {
            path: p.display().to_string(),
            cause: e,
        };
        self.vs.save(&st).map_err(|e| io(&st, e.to_string()))?;
        let js = dir.join("model.json");
        std::fs::write(
            &js,
            serde_json::to_vec_pretty(&self.spec).unwrap_or_default(),
        )
        .map_err(|e| io(&js, e.to_string()))
    }

    /// Reads what [`Model::save`] wrote onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Model, ModelError> {
        let io = |p: &Path, e: String| ModelError::Io {
            path: p.display().to_string(),
            cause: e,
        };
        let js = dir.join("model.json");
        let spec: ModelSpec =
            serde_json::from_slice(&std::fs::read(&js).map_err(|e| io(&js, e.to_string()))?)
                .map_err(|e| io(&js, e.to_string()))?;
        let mut m = Model::new(spec, device);
        let st = dir.join("model.safetensors");
        m.vs.load(&st).map_err(|e| io(&st, e.to_string()))?;
        Ok(m)
    }

    /// Name prefix of the output layer (`NAME.weight`, `NAME.bias`).
    pub fn head(&self) -> &'static str {
        match self.spec.arch {
            Arch::Cnn => "fc3",
            Arch::Resnet18 | Arch::Resnet18Cifar => "fc",
        }
    }

    /// Every parameter and buffer, by name (for comparisons in tests and methods).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// ImageNet channel statistics, which the reference normalises CIFAR inputs with.
const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Turns a u8 batch (N,C,H,W on any device) into the model's float input.
/// MNIST family: pixels in [0,1]. CIFAR: ImageNet normalisation; the ImageNet-stem ResNet gets
/// 224x224 inputs (train with `augment`: RandomResizedCrop + horizontal flip; otherwise a resize);
/// the CIFAR stem gets 32x32 (train with `augment`: 4-pixel padded random crop + flip).
pub fn prepare(x: &Tensor, family: Family, arch: Arch, augment: bool, device: Device) -> Tensor {
    normalize(&pixels(x, family, arch, augment, device), family)
}

/// [`prepare`] up to the normalisation: the (augmented, resized) image in [0, 1], the space in
/// which pixel-space attacks work.
pub fn pixels(x: &Tensor, family: Family, arch: Arch, augment: bool, device: Device) -> Tensor {
    let x = x.to_device(device).to_kind(Kind::Float) / 255.0;
    if family == Family::Mnist {
        return x;
    }
    match (arch, augment) {
        (Arch::Resnet18, true) => random_resized_crop(&x, 224),
        (Arch::Resnet18, false) => x.upsample_bilinear2d([224, 224], false, None, None),
        (_, true) => random_crop_flip(&x, 4),
        (_, false) => x,
    }
}

/// The rest of [`prepare`]: [`pixels`] as the model's input (differentiable).
pub fn normalize(x: &Tensor, family: Family) -> Tensor {
    if family == Family::Mnist {
        return x.shallow_clone();
    }
    let device = x.device();
    let mean = Tensor::from_slice(&MEAN)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&STD)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    (x - mean) / std
}

fn flip_some(x: Tensor) -> Tensor {
    let n = x.size()[0];
    let mask = Tensor::rand([n, 1, 1, 1], (Kind::Float, x.device())).lt(0.5);
    x.flip([3]).where_self(&mask, &x)
}

/// torchvision's RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) then a horizontal flip.
fn random_resized_crop(x: &Tensor, size: i64) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let area = (h * w) as f64;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let r = Vec::<f64>::try_from(Tensor::rand([4], (Kind::Double, tch::Device::Cpu)))
            .unwrap_or(vec![0.5; 4]);
        let mut crop = (h, w, 0, 0);
        for attempt in 0..10 {
            let s = if attempt == 0 { r[0] } else { rand_scalar() };
            let target = area * (0.08 + s * 0.92);
            let log_ratio = (0.75f64).ln() + rand_scalar() * ((4.0f64 / 3.0).ln() - (0.75f64).ln());
            let ratio = log_ratio.exp();
            let cw = (target * ratio).sqrt().round() as i64;
            let ch = (target / ratio).sqrt().round() as i64;
            if cw > 0 && ch > 0 && cw <= w && ch <= h {
                let top = (r[1] * (h - ch + 1) as f64) as i64;
                let left = (r[2] * (w - cw + 1) as f64) as i64;
                crop = (ch, cw, top.min(h - ch), left.min(w - cw));
                break;
            }
        }
        let (ch, cw, top, left) = crop;
        let patch = x.get(i).narrow(1, top, ch).narrow(2, left, cw).unsqueeze(0);
        out.push(patch.upsample_bilinear2d([size, size], false, None, None));
    }
    flip_some(Tensor::cat(&out, 0))
}

fn rand_scalar() -> f64 {
    Tensor::rand([1], (Kind::Double, tch::Device::Cpu)).double_value(&[0])
}

/// Pads by `pad` pixels, takes a random crop of the original size, flips half the batch.
fn random_crop_flip(x: &Tensor, pad: i64) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let padded = x.constant_pad_nd([pad, pad, pad, pad]);
    let offs = Vec::<i64>::try_from(
        Tensor::randint(2 * pad + 1, [n, 2], (Kind::Int64, tch::Device::Cpu)).view([-1]),
    )
    .unwrap_or_default();
    let crops: Vec<Tensor> = (0..n as usize)
        .map(|i| {
            padded
                .get(i as i64)
                .narrow(1, offs[2 * i], h)
                .narrow(2, offs[2 * i + 1], w)
                .unsqueeze(0)
        })
        .collect();
    flip_some(Tensor::cat(&crops, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let _rng = crate::rng_lock();
        tch::manual_seed(0);
        let cnn = Model::new(
            ModelSpec {
                arch: Arch::Cnn,
                classes: 10,
                channels: 1,
            },
            Device::Cpu,
        );
        let (l, e) = cnn.forward(
            &Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(l.size(), [2, 10]);
        assert_eq!(e.size(), [2, 256]);
        for (arch, side) in [(Arch::Resnet18Cifar, 32), (Arch::Resnet18, 224)] {
            let m = Model::new(
                ModelSpec {
                    arch,
                    classes: 100,
                    channels: 3,
                },
                Device::Cpu,
            );
            let (l, e) = m.forward(
                &Tensor::zeros([2, 3, side, side], (Kind::Float, Device::Cpu)),
                false,
            );
            assert_eq!(l.size(), [2, 100]);
            assert_eq!(e.size(), [2, 512]);
        }
        let x = Tensor::ones([2, 3, 32, 32], (Kind::Uint8, Device::Cpu));
        assert_eq!(
            prepare(&x, Family::Cifar, Arch::Resnet18, true, Device::Cpu).size(),
            [2, 3, 224, 224]
        );
        assert_eq!(
            prepare(&x, Family::Cifar, Arch::Resnet18Cifar, true, Device::Cpu).size(),
            [2, 3, 32, 32]
        );
    }

    #[test]
    fn duplicate_and_save_load_are_exact() {
        let _rng = crate::rng_lock();
        tch::manual_seed(1);
        let m = Model::new(
            ModelSpec {
                arch: Arch::Cnn,
                classes: 10,
                channels: 1,
            },
            Device::Cpu,
        );
        let d = m.duplicate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        m.save(dir.path()).unwrap();
        let l = Model::load(dir.path(), Device::Cpu).unwrap();
        for ((n1, a), ((_, b), (_, c))) in m
            .named_tensors()
            .iter()
            .zip(d.named_tensors().iter().zip(l.named_tensors().iter()))
        {
            assert!(a.equal(b) && a.equal(c), "{n1} differs");
        }
    }
}
