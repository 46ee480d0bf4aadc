//! Exact (erf) GELU with a cheap forward and a one-multiply backward.
//!
//! burn's GELU runs ~5 element passes forward (erf in f64) and ~15 backward (`powf`,
//! `tanh`), about 20 % of a CPU training step here. This version computes `GELU(x)` and
//! `GELU'(x)` together in one pass over the values and wires the derivative into the
//! autodiff graph with a straight-through surrogate:
//! `y = c + (x - detach(x)) · d`, where `c = GELU(x)` and `d = GELU'(x)` are constants.
//! `x - detach(x)` is exactly 0, so the value is `c`, and its gradient is `d · grad`.
//! Only used on CPU backends (ndarray, flex); GPU backends keep burn's fused GELU.

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};

/// Elements per worker below which the pass stays on the calling thread.
const PAR_CHUNK: usize = 1 << 16;

/// Abramowitz–Stegun 7.1.26 coefficients for erf (|error| ≤ 1.5e-7).
const P: f32 = 0.327_591_1;
const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
const INV_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `(GELU(x), GELU'(x))` for one value, sharing the single `exp(-x²/2)`.
#[inline]
fn gelu_and_grad(x: f32) -> (f32, f32) {
    let z = x.abs() * INV_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = (-0.5 * x * x).exp();
    // tail = 1 - erf(|x|/√2) = poly·e ;  Φ(x) = 1 - tail/2 for x ≥ 0, tail/2 otherwise.
    let half_tail = 0.5 * poly * e;
    let cdf = if x >= 0.0 { 1.0 - half_tail } else { half_tail };
    (x * cdf, cdf + x * e * INV_SQRT_2PI)
}

/// Fills `out` (and `grad` when given) from `xs`, split over the available cores.
fn fill(xs: &[f32], out: &mut [f32], grad: Option<&mut [f32]>) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(xs.len() / PAR_CHUNK)
        .max(1);
    let chunk = xs.len().div_ceil(workers);
    let serial = |xs: &[f32], out: &mut [f32], grad: Option<&mut [f32]>| match grad {
        Some(grad) => {
            for ((x, o), g) in xs.iter().zip(out.iter_mut()).zip(grad.iter_mut()) {
                (*o, *g) = gelu_and_grad(*x);
            }
        }
        None => {
            for (x, o) in xs.iter().zip(out.iter_mut()) {
                *o = gelu_and_grad(*x).0;
            }
        }
    };
    if workers == 1 {
        serial(xs, out, grad);
        return;
    }
    std::thread::scope(|scope| {
        let mut grad_chunks: Vec<Option<&mut [f32]>> = match grad {
            Some(g) => g.chunks_mut(chunk).map(Some).collect(),
            None => (0..workers).map(|_| None).collect(),
        };
        for ((xs, out), grad) in xs
            .chunks(chunk)
            .zip(out.chunks_mut(chunk))
            .zip(grad_chunks.drain(..))
        {
            scope.spawn(move || serial(xs, out, grad));
        }
    });
}

/// Whether `B` keeps tensors in host memory, where reading values back is cheap.
fn host_backend<B: Backend>(device: &B::Device) -> bool {
    let name = B::name(device);
    name.contains("ndarray") || name.contains("flex")
}

/// Exact GELU `x·Φ(x)`; differentiable on autodiff backends. Uses burn's own GELU on
/// GPU backends (where a host round trip would cost more than it saves) and for
/// non-`f32` tensors.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let device = x.device();
    if x.dtype() != DType::F32 || !host_backend::<B>(&device) {
        return burn::tensor::activation::gelu(x);
    }
    let shape = x.shape();
    // `mul_scalar` yields a fresh, uniquely owned buffer, which burn-ndarray hands out
    // without copying; `into_data` on a shared tensor would copy element by element.
    let data = x.clone().detach().mul_scalar(1.0).into_data();
    let Ok(xs) = data.as_slice::<f32>() else {
        return burn::tensor::activation::gelu(x);
    };
    let track = B::ad_enabled(&device);
    let mut out = vec![0.0f32; xs.len()];
    let mut grad = if track { vec![0.0f32; xs.len()] } else { Vec::new() };
    fill(xs, &mut out, track.then_some(grad.as_mut_slice()));
    let value = Tensor::<B, D>::from_data(TensorData::new(out, shape.clone()), &device);
    if !track {
        return value;
    }
    let slope = Tensor::<B, D>::from_data(TensorData::new(grad, shape), &device);
    let zero = x.clone() - x.detach();
    value + zero * slope
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    type B = NdArray<f32>;

    fn reference(x: f64) -> (f64, f64) {
        // erf via a long series-free route: high-precision numerical integration.
        let steps = 2_000;
        let h = x / steps as f64;
        let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut area = 0.0;
        for i in 0..steps {
            let a = i as f64 * h;
            area += (pdf(a) + 4.0 * pdf(a + h / 2.0) + pdf(a + h)) * h / 6.0;
        }
        let cdf = 0.5 + area;
        (x * cdf, cdf + x * pdf(x))
    }

    #[test]
    fn matches_exact_gelu_and_derivative() {
        for i in -60..=60 {
            let x = i as f32 * 0.1;
            let (y, g) = gelu_and_grad(x);
            let (ry, rg) = reference(x as f64);
            assert!((y as f64 - ry).abs() < 2e-6, "gelu({x}) = {y}, want {ry}");
            assert!((g as f64 - rg).abs() < 2e-6, "gelu'({x}) = {g}, want {rg}");
        }
    }

    #[test]
    fn agrees_with_burn_gelu_forward_and_has_right_gradient() {
        let dev = Default::default();
        let vals: Vec<f32> = (0..300_000).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let x = Tensor::<B, 1>::from_data(TensorData::new(vals.clone(), [vals.len()]), &dev);
        let ours = gelu(x.clone()).into_data().to_vec::<f32>().unwrap();
        let burns = burn::tensor::activation::gelu(x)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() < 1e-5);
        }

        type Ad = Autodiff<B>;
        let x = Tensor::<Ad, 1>::from_data(TensorData::new(vals.clone(), [vals.len()]), &dev).require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        for (v, gi) in vals.iter().zip(&g).step_by(997) {
            let (_, want) = reference(*v as f64);
            assert!((*gi as f64 - want).abs() < 1e-5, "d/dx at {v}: {gi} vs {want}");
        }
    }
}
