//! Compute backends: burn-ndarray on the CPU (always built), burn-cuda behind the `cuda` feature.

use anyhow::{Result, bail};

/// The CPU inference backend.
pub type Cpu = burn::backend::NdArray<f32>;
/// The CPU training backend (autodiff over [`Cpu`]).
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// burn-flex, the gemm / im2col CPU backend (`--device flex`).
#[cfg(feature = "flex")]
pub type Flex = burn_flex::Flex;
/// The burn-flex training backend (autodiff over [`Flex`]).
#[cfg(feature = "flex")]
pub type FlexTrain = burn::backend::Autodiff<Flex>;
/// The CPU backend the face detector runs on: burn-flex with the `flex` feature (its im2col/gemm
/// convolutions suit CenterFace), else [`Cpu`].
#[cfg(feature = "flex")]
pub type DetectCpu = Flex;
/// The CPU backend the face detector runs on: burn-flex with the `flex` feature (its im2col/gemm
/// convolutions suit CenterFace), else [`Cpu`].
#[cfg(not(feature = "flex"))]
pub type DetectCpu = Cpu;
/// The CUDA inference backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32>;
/// The CUDA training backend.
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// Which device a command runs on (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// burn-ndarray, all CPU cores (the face detector on burn-flex with the `flex` feature).
    #[default]
    Cpu,
    /// burn-cuda, GPU 0 (needs the `cuda` build feature and an NVIDIA driver).
    #[value(alias = "gpu")]
    Cuda,
    /// burn-flex (gemm / im2col CPU backend) for every model, all CPU cores (needs the `flex`
    /// build feature): the side-by-side comparison with burn-ndarray.
    Flex,
}

impl DeviceChoice {
    /// The flag's spelling (`cpu`, `cuda`, `flex`), for records and messages.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Flex => "flex",
        }
    }

    /// This choice if this binary and machine can run it; CUDA or flex is refused with a clear error
    /// when not compiled in, CUDA also when no driver is found (burn-cuda would otherwise panic in
    /// a worker thread).
    pub fn available(self) -> Result<Self> {
        if self == DeviceChoice::Flex && !cfg!(feature = "flex") {
            return Err(not_built(self));
        }
        if self == DeviceChoice::Cuda {
            if !cfg!(feature = "cuda") {
                return Err(not_built(self));
            }
            if !cuda_driver_present() {
                bail!(
                    "--device cuda: no NVIDIA driver found (libcuda.so.1 is not loadable); use --device cpu"
                );
            }
        }
        Ok(self)
    }
}

/// Evaluates `$body` with the type `$B` bound to the inference backend of `$device` (a checked
/// [`DeviceChoice`]), `$D` to the face detector's backend, and `$dev` to `$B`'s default device:
/// one generic code path for every device, with the match written once. `on_device!(train
/// choice, |B, dev| …)` binds `B` to the training (autodiff) backend instead. Its `cfg`s are
/// evaluated in the crate that calls it, so it is for this package's own binary, whose features
/// are the library's.
#[macro_export]
macro_rules! on_device {
    (train $device:expr, |$B:ident, $dev:ident| $body:expr) => {
        match $device {
            $crate::backend::DeviceChoice::Cpu => {
                type $B = $crate::backend::CpuTrain;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceChoice::Cuda => {
                type $B = $crate::backend::GpuTrain;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceChoice::Cuda => {
                return Err($crate::backend::not_built($crate::backend::DeviceChoice::Cuda))
            }
            #[cfg(feature = "flex")]
            $crate::backend::DeviceChoice::Flex => {
                type $B = $crate::backend::FlexTrain;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(not(feature = "flex"))]
            $crate::backend::DeviceChoice::Flex => {
                return Err($crate::backend::not_built($crate::backend::DeviceChoice::Flex))
            }
        }
    };
    ($device:expr, |$B:ident, $D:ident, $dev:ident| $body:expr) => {
        match $device {
            $crate::backend::DeviceChoice::Cpu => {
                #[allow(dead_code)]
                type $B = $crate::backend::Cpu;
                #[allow(dead_code)]
                type $D = $crate::backend::DetectCpu;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::DeviceChoice::Cuda => {
                #[allow(dead_code)]
                type $B = $crate::backend::Gpu;
                #[allow(dead_code)]
                type $D = $crate::backend::Gpu;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::backend::DeviceChoice::Cuda => {
                return Err($crate::backend::not_built($crate::backend::DeviceChoice::Cuda))
            }
            #[cfg(feature = "flex")]
            $crate::backend::DeviceChoice::Flex => {
                #[allow(dead_code)]
                type $B = $crate::backend::Flex;
                #[allow(dead_code)]
                type $D = $crate::backend::Flex;
                let $dev = $crate::backend::default_device::<$B>();
                $body
            }
            #[cfg(not(feature = "flex"))]
            $crate::backend::DeviceChoice::Flex => {
                return Err($crate::backend::not_built($crate::backend::DeviceChoice::Flex))
            }
        }
    };
}

/// The error for a device this binary was built without (the arm [`on_device!`] takes for it).
pub fn not_built(device: DeviceChoice) -> anyhow::Error {
    anyhow::anyhow!(
        "--device {0}: this binary was built without the `{0}` feature (rebuild with `cargo build --release --features {0}`)",
        device.name()
    )
}

/// Backend `B`'s default device (GPU 0 on CUDA), for [`on_device!`].
pub fn default_device<B: burn::tensor::backend::Backend>() -> B::Device {
    Default::default()
}

/// True when the CUDA driver library can be found on this machine.
pub fn cuda_driver_present() -> bool {
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/nvidia/lib64",
        "/usr/local/cuda/lib64",
        "/usr/lib/aarch64-linux-gnu/tegra",
    ];
    let from_env = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    dirs.iter()
        .map(|d| d.to_string())
        .chain(from_env.split(':').filter(|s| !s.is_empty()).map(String::from))
        .any(|d| std::path::Path::new(&d).join("libcuda.so.1").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::ValueEnum;

    #[test]
    fn device_flag_is_checked() {
        let parse = |s| DeviceChoice::from_str(s, true);
        assert_eq!(parse("cpu").unwrap().available().unwrap(), DeviceChoice::Cpu);
        assert_eq!(parse("gpu").unwrap(), DeviceChoice::Cuda);
        assert!(parse("tpu").is_err());
        let flex = DeviceChoice::Flex.available();
        if cfg!(feature = "flex") {
            assert_eq!(flex.unwrap(), DeviceChoice::Flex);
        } else {
            assert!(flex.unwrap_err().to_string().contains("`flex` feature"));
        }
        let cuda = DeviceChoice::Cuda.available();
        if !cfg!(feature = "cuda") {
            assert!(cuda.unwrap_err().to_string().contains("`cuda` feature"));
        } else if !cuda_driver_present() {
            assert!(cuda.unwrap_err().to_string().contains("no NVIDIA driver"));
        }
    }
}
