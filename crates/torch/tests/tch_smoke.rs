//! Proves libtorch links and runs: a tensor op and one optimizer step.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn tensor_op_and_one_adam_step() {
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let b = (&a * 2.0).sum(Kind::Float);
    assert_eq!(b.double_value(&[]), 12.0);

    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let lin = nn::linear(vs.root(), 4, 1, Default::default());
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    let x = Tensor::randn([16, 4], (Kind::Float, Device::Cpu));
    let y = x.sum_dim_intlist(1, true, Kind::Float);
    let loss = |m: &nn::Linear| {
        (m.forward(&x) - &y)
            .square()
            .mean(Kind::Float)
            .double_value(&[])
    };
    let before = loss(&lin);
    for _ in 0..20 {
        let l = (lin.forward(&x) - &y).square().mean(Kind::Float);
        opt.backward_step(&l);
    }
    assert!(loss(&lin) < before, "Adam steps did not reduce the loss");
}
