//! Layer-wise similarity of two models: linear CKA (Kornblith et al., "Similarity of Neural
//! Network Representations Revisited", ICML 2019) of each layer's outputs on the same probe
//! images. 1 means the layer represents the probe set as the other model's does, up to rotation
//! and scale; it is what the Machine Unlearning Comparator shows between a method and retrain.

use crate::data::Family;
use crate::ml::batches;
use crate::models::{Model, prepare};
use tch::{Device, Kind, Tensor};

/// Values per image above which a layer's feature maps are average-pooled spatially to a square
/// grid that fits (ResNet-18's stem and residual stages; every CNN layer fits whole). Bounds the
/// memory of the probe set's features at 8,192 values per image and layer.
pub const MAX_FEATURES: i64 = 8192;

/// Linear CKA of two representations of the same inputs (one row per input, any trailing
/// shape), computed from centred Gram matrices so a wide layer costs rows x rows. NaN when
/// either representation is constant over the inputs.
pub fn linear_cka(x: &Tensor, y: &Tensor) -> f64 {
    let gram = |t: &Tensor| {
        let t = t.flatten(1, -1).to_kind(Kind::Double);
        let c = &t - t.mean_dim(0, true, Kind::Double);
        c.matmul(&c.tr())
    };
    let (k, l) = (gram(x), gram(y));
    let dot = |a: &Tensor, b: &Tensor| (a * b).sum(Kind::Double).double_value(&[]);
    let den = (dot(&k, &k) * dot(&l, &l)).sqrt();
    if den > 0.0 {
        dot(&k, &l) / den
    } else {
        f64::NAN
    }
}

/// A layer's output with at most `MAX_FEATURES` values per image.
fn bounded(t: &Tensor) -> Tensor {
    let size = t.size();
    let per_image: i64 = size[1..].iter().product();
    if size.len() == 4 && per_image > MAX_FEATURES {
        let side = ((MAX_FEATURES / size[1]) as f64).sqrt().floor().max(1.0) as i64;
        t.adaptive_avg_pool2d([side, side])
    } else {
        t.shallow_clone()
    }
}

/// Linear CKA between `a` and `b`, layer by layer (the layers of `Model::layers`, in order),
/// on the images `x` (raw, as the dataset stores them). Both models are evaluated in eval mode.
pub fn layer_cka(
    a: &Model,
    b: &Model,
    x: &Tensor,
    family: Family,
    batch: i64,
) -> Vec<(&'static str, f64)> {
    let _guard = tch::no_grad_guard();
    let all = Tensor::arange(x.size()[0], (Kind::Int64, Device::Cpu));
    let mut feats: Vec<(&'static str, Vec<Tensor>, Vec<Tensor>)> = Vec::new();
    for idx in batches(&all, batch.max(1), false) {
        let raw = x.index_select(0, &idx);
        let out = |m: &Model| {
            let xb = prepare(&raw, family, m.spec.arch, false, m.device());
            m.layers(&xb)
                .into_iter()
                .map(|(name, t)| (name, bounded(&t).to_device(Device::Cpu)))
                .collect::<Vec<_>>()
        };
        let (la, lb) = (out(a), out(b));
        for ((name, ta), (_, tb)) in la.into_iter().zip(lb) {
            match feats.iter_mut().find(|f| f.0 == name) {
                Some(f) => {
                    f.1.push(ta);
                    f.2.push(tb);
                }
                None => feats.push((name, vec![ta], vec![tb])),
            }
        }
    }
    feats
        .into_iter()
        .map(|(name, ta, tb)| (name, linear_cka(&Tensor::cat(&ta, 0), &Tensor::cat(&tb, 0))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelSpec;
    use crate::train::{TrainConfig, train};

    #[test]
    fn cka_is_invariant_to_rotation_and_scale_and_low_for_unrelated_features() {
        tch::manual_seed(0);
        let x = Tensor::randn([200, 30], (Kind::Double, Device::Cpu));
        assert!((linear_cka(&x, &x) - 1.0).abs() < 1e-9);
        // An orthogonal transform and a scale leave it at 1.
        let (q, _) = Tensor::randn([30, 30], (Kind::Double, Device::Cpu)).qr(true);
        let rotated = x.matmul(&q) * 3.0 + 5.0;
        assert!((linear_cka(&x, &rotated) - 1.0).abs() < 1e-9);
        // Independent features: near 0 (its expectation is about d/n here).
        let y = Tensor::randn([200, 30], (Kind::Double, Device::Cpu));
        let v = linear_cka(&x, &y);
        assert!(v < 0.3, "{v}");
        // A direct computation: CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F).
        let c = |t: &Tensor| t - t.mean_dim(0, true, Kind::Double);
        let (xc, yc) = (c(&x), c(&y));
        let f = |t: Tensor| t.square().sum(Kind::Double).double_value(&[]);
        let want =
            f(yc.tr().matmul(&xc)) / (f(xc.tr().matmul(&xc)) * f(yc.tr().matmul(&yc))).sqrt();
        assert!((v - want).abs() < 1e-9, "{v} vs {want}");
        assert!(linear_cka(&x, &Tensor::ones([200, 4], (Kind::Double, Device::Cpu))).is_nan());
    }

    #[test]
    fn wide_feature_maps_are_pooled_to_the_bound_and_narrow_ones_kept() {
        for (shape, want) in [
            (vec![2, 64, 56, 56], vec![2, 64, 11, 11]),
            (vec![2, 512, 7, 7], vec![2, 512, 4, 4]),
            (vec![2, 16, 14, 14], vec![2, 16, 14, 14]),
            (vec![2, 10_000], vec![2, 10_000]),
        ] {
            let t = Tensor::ones(shape.as_slice(), (Kind::Float, Device::Cpu));
            assert_eq!(bounded(&t).size(), want);
        }
    }

    #[test]
    fn a_trained_model_matches_itself_in_every_layer_and_a_reinitialised_one_less() {
        let data = crate::data::synthetic(0, 10, 1000, 300, 0.3);
        let spec = ModelSpec {
            arch: crate::models::Arch::Cnn,
            classes: 10,
            channels: 1,
        };
        tch::manual_seed(1);
        let mut trained = Model::new(spec.clone(), Device::Cpu);
        let cfg = TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        };
        let idx = Tensor::arange(1000, (Kind::Int64, Device::Cpu));
        train(&mut trained, &data, &idx, &cfg).unwrap();
        let probe = data.test_x.narrow(0, 0, 256);
        let itself = layer_cka(&trained, &trained, &probe, Family::Mnist, 100);
        let names: Vec<&str> = itself.iter().map(|l| l.0).collect();
        assert_eq!(names, ["conv1", "conv2", "fc1", "fc2", "fc3"]);
        for (layer, v) in &itself {
            assert!((v - 1.0).abs() < 1e-6, "{layer}: {v}");
        }
        tch::manual_seed(2);
        let fresh = Model::new(spec, Device::Cpu);
        let other = layer_cka(&trained, &fresh, &probe, Family::Mnist, 100);
        // Measured: 0.99, 0.96, 0.80, 0.62, 0.28 from conv1 to fc3. The early layers of any CNN
        // mostly pass the images on (this data is class templates plus noise); what training
        // added, the later layers, differs.
        for (layer, v) in &other {
            assert!(v.is_finite() && *v < 1.0 - 1e-3, "{layer}: {v} ({other:?})");
        }
        let (first, last) = (other[0].1, other[4].1);
        assert!(last < 0.5 && last < first - 0.3, "{other:?}");
        let mean = other.iter().map(|l| l.1).sum::<f64>() / 5.0;
        assert!(mean < 0.85, "{other:?}");
    }
}
