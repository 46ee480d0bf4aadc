//! Compute backends: burn-ndarray on the CPU (always built), burn-cuda behind the `cuda` feature.

use anyhow::{Result, bail};

/// The CPU inference backend.
pub type Cpu = burn::backend::NdArray<f32>;
/// The CPU training backend (autodiff over [`Cpu`]).
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// The CPU backend the face detector runs on: burn-flex with the `flex` feature (its im2col/gemm
/// convolutions suit CenterFace), else [`Cpu`].
#[cfg(feature = "flex")]
pub type DetectCpu = burn_flex::Flex;
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

/// Which device a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn-ndarray, all CPU cores.
    Cpu,
    /// burn-cuda, GPU 0.
    Cuda,
}

/// Parses `--device`; CUDA is refused with a clear error when not compiled in or no driver is found
/// (burn-cuda would otherwise panic in a worker thread).
pub fn choose_device(flag: &str) -> Result<DeviceChoice> {
    match flag {
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" | "gpu" => {
            if !cfg!(feature = "cuda") {
                bail!(
                    "--device cuda: this binary was built without the `cuda` feature (rebuild with `cargo build --release --features cuda`)"
                );
            }
            if !cuda_driver_present() {
                bail!(
                    "--device cuda: no NVIDIA driver found (libcuda.so.1 is not loadable); use --device cpu"
                );
            }
            Ok(DeviceChoice::Cuda)
        }
        other => bail!("--device: unknown device '{other}' (expected cpu or cuda)"),
    }
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

    #[test]
    fn device_flag_is_checked() {
        assert_eq!(choose_device("cpu").unwrap(), DeviceChoice::Cpu);
        assert!(choose_device("tpu").unwrap_err().to_string().contains("tpu"));
        if !cfg!(feature = "cuda") {
            assert!(choose_device("cuda").unwrap_err().to_string().contains("feature"));
        }
    }
}
