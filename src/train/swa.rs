//! Stochastic weight averaging (Izmailov et al., 2018): the running mean of a model's weights at
//! the ends of several epochs, which lands nearer the middle of a flat minimum than any one of
//! them and so usually generalises better than the last epoch's weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Collects every float parameter of a module, flattened, in visiting order.
struct Flatten<B: Backend> {
    tensors: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Flatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.tensors.push(param.val().flatten::<1>(0, D - 1));
    }
}

/// Moves each float parameter of the running mean towards the matching collected tensor by
/// `1 / count` (the incremental mean update).
struct Update<B: Backend> {
    next: std::vec::IntoIter<Tensor<B, 1>>,
    count: usize,
    mismatch: bool,
}

impl<B: Backend> ModuleMapper<B> for Update<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(new) = self.next.next() else {
            self.mismatch = true;
            return param;
        };
        let weight = 1.0 / self.count as f32;
        let mut fits = true;
        let param = param.map(|mean| {
            let dims = mean.dims();
            if new.dims()[0] != dims.iter().product::<usize>() {
                fits = false;
                return mean;
            }
            let new = new.reshape(dims);
            mean.clone() + (new - mean) * weight
        });
        self.mismatch |= !fits;
        param
    }
}

/// The running mean of the weights of several copies of one module (same type and shapes).
pub struct WeightAverage<M> {
    mean: M,
    count: usize,
}

impl<M> WeightAverage<M> {
    /// Starts the average with its first model.
    pub fn new(first: M) -> Self {
        Self {
            mean: first,
            count: 1,
        }
    }

    /// Resumes an average of `count` models whose mean is `mean` (from a checkpoint).
    pub fn resume(mean: M, count: usize) -> Self {
        Self {
            mean,
            count: count.max(1),
        }
    }

    /// How many models the average holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The averaged module.
    pub fn mean(&self) -> &M {
        &self.mean
    }

    /// The averaged module, by value.
    pub fn into_mean(self) -> M {
        self.mean
    }
    /// Adds one more model to the average: every float parameter becomes
    /// `mean + (model − mean) / (count + 1)`.
    pub fn add<B: Backend>(&mut self, model: &M) -> anyhow::Result<()>
    where
        M: Module<B>,
    {
        let mut flat = Flatten::<B> { tensors: vec![] };
        model.visit(&mut flat);
        let expected = flat.tensors.len();
        let mut update = Update {
            next: flat.tensors.into_iter(),
            count: self.count + 1,
            mismatch: false,
        };
        let mean = self.mean.clone().map(&mut update);
        if update.mismatch || update.next.len() != 0 {
            anyhow::bail!(
                "weight averaging: the model has {expected} float parameters, the average a different number"
            );
        }
        self.mean = mean;
        self.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    fn weights(l: &Linear<B>) -> (Vec<f32>, Vec<f32>) {
        (
            l.weight.val().into_data().to_vec().unwrap(),
            l.bias.as_ref().unwrap().val().into_data().to_vec().unwrap(),
        )
    }

    #[test]
    fn average_of_three_models_is_their_elementwise_mean() {
        let device = Default::default();
        // Materialised weights (a lazily initialised parameter would draw anew in each clone).
        let models: Vec<Linear<B>> = (0..3)
            .map(|_| LinearConfig::new(5, 3).init::<B>(&device).map(&mut Scale(1.0)))
            .collect();
        let mut avg = WeightAverage::new(models[0].clone());
        for m in &models[1..] {
            avg.add(m).unwrap();
        }
        assert_eq!(avg.count(), 3);
        let (w, b) = weights(avg.mean());
        let parts: Vec<_> = models.iter().map(weights).collect();
        let want_w: Vec<f32> = (0..w.len())
            .map(|i| parts.iter().map(|p| p.0[i]).sum::<f32>() / 3.0)
            .collect();
        let want_b: Vec<f32> = (0..b.len())
            .map(|i| parts.iter().map(|p| p.1[i]).sum::<f32>() / 3.0)
            .collect();
        for (name, got, want) in [("weight", &w, &want_w), ("bias", &b, &want_b)] {
            for (i, (g, e)) in got.iter().zip(want).enumerate() {
                assert!((g - e).abs() < 1e-6, "{name} {i}: {g} vs {e}");
            }
        }
        // The inputs are distinct, so the mean differs from each of them.
        assert!(parts.iter().all(|p| p.0 != w));
    }

    #[test]
    fn resumed_average_weighs_the_new_model_by_one_over_count() {
        let device = Default::default();
        let zero = LinearConfig::new(2, 2).init::<B>(&device).map(&mut Scale(0.0));
        let mut one = LinearConfig::new(2, 2).init::<B>(&device);
        one.weight = one
            .weight
            .map(|_| Tensor::from_data(TensorData::new(vec![4.0f32; 4], [2, 2]), &device));
        // Three models of mean 0 so far, then a fourth of all 4s: the mean is 1.
        let mut avg = WeightAverage::resume(zero, 3);
        avg.add(&one).unwrap();
        let (w, _) = weights(avg.mean());
        assert_eq!(w, vec![1.0; 4]);
        assert_eq!(avg.count(), 4);
    }

    #[test]
    fn models_of_different_shapes_are_refused() {
        let device = Default::default();
        let a = LinearConfig::new(4, 3).init::<B>(&device);
        let b = LinearConfig::new(4, 3).with_bias(false).init::<B>(&device);
        let mut avg = WeightAverage::new(a);
        assert!(avg.add(&b).is_err());
    }

    struct Scale(f32);

    impl ModuleMapper<B> for Scale {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let s = self.0;
            param.map(|t| t * s)
        }
    }
}
