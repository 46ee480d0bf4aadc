//! Argument definitions for every subcommand (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use paca_fer::backend::DeviceChoice;
use paca_fer::model::Grouping;
use paca_fer::sweep_results::Shard;

/// paca-fer: facial-emotion recognition with patch-to-cluster attention.
#[derive(Debug, Parser)]
#[command(name = "paca-fer", version, about, long_about = None)]
pub struct Cli {
    /// TOML file overriding config/default.toml (any subset of keys).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print exactly one JSON object on stdout (logs go to stderr; set RUST_LOG to change their level).
    #[arg(long, global = true)]
    pub json: bool,
    /// Only log warnings and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect a dataset before training.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train one method/k or the whole sweep; writes results tables and models.
    Train(TrainArgs),
    /// Train a model folder's MobileNetV2 trunk and ViT together on augmented faces.
    Finetune(FinetuneArgs),
    /// Average the weights of fine-tuned folders that share a starting model (a model soup).
    Average(AverageArgs),
    /// Evaluate a trained model on a dataset split.
    Eval(EvalArgs),
    /// Classify already-cropped face images.
    Predict(PredictArgs),
    /// Choose the model to run from the shipped zoo (or a sweep), weighing accuracy against this machine's per-face cost.
    Select(SelectArgs),
    /// Build a model zoo from a sweep's results: its models, one shared trunk, and a timed index.
    #[command(subcommand)]
    Zoo(ZooCommand),
    /// Stream camera frames or files through detection, clustering and the ViT, with an overlay.
    Run(RunArgs),
    /// Benchmarks behind the numbers in the README.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Per-class image counts per split, and the files that could not be decoded.
    Stats(DataStatsArgs),
}

/// Dataset location, shared by subcommands that read one.
#[derive(Debug, Args, Clone)]
pub struct DataSource {
    /// Dataset root (FER+ <root>/{train,valid,test}/<class>/, AffectNet <root>/<class>/ + labels.csv, or ImageFolder).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Layout: auto, ferplus, affectnet, imagefolder (default: data.layout from the config).
    #[arg(long)]
    pub layout: Option<String>,
}

/// `data stats` flags.
#[derive(Debug, Args)]
pub struct DataStatsArgs {
    /// Dataset to inspect.
    #[command(flatten)]
    pub source: DataSource,
    /// Count files without decoding them (faster; corrupt images are then not detected).
    #[arg(long)]
    pub no_verify: bool,
}

/// `train` flags.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TrainArgs {
    /// A step after training (`merge`); without one, `train` trains.
    #[command(subcommand)]
    pub action: Option<TrainAction>,
    /// Training data.
    #[command(flatten)]
    pub source: Option<DataSource>,
    /// Clustering method for a single run: kmeans, agglomerative, spectral, gmm, dbscan, none (patch-to-patch), learned.
    #[arg(long)]
    pub method: Option<Grouping>,
    /// Clusters per image for a single run.
    #[arg(long)]
    pub k: Option<usize>,
    /// Run the grid in this sweep file instead of one cell (e.g. config/sweep.toml).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["method", "k"])]
    pub sweep: Option<PathBuf>,
    /// Patch embedder: pixels, mobilenet_v2, resnet50, resnet50:per_patch.
    #[arg(long)]
    pub embedder: Option<String>,
    /// Weights for embedders that ship none (ResNet-50: torchvision names, safetensors).
    #[arg(long, value_name = "FILE")]
    pub embedder_weights: Option<PathBuf>,
    /// Epochs (default: train.epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Adam learning rate (default: train.lr).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Images per step (default: train.batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed for initialisation and shuffling (default: train.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training threads, one batch shard each; 0 = one per core (default: train.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Few epochs on a subset: a smoke run of the whole grid in minutes.
    #[arg(long)]
    pub quick: bool,
    /// Continue from the last checkpoint of this run: finished cells are skipped, an unfinished one
    /// continues from its last epoch (options must match the checkpoint's).
    #[arg(long)]
    pub resume: bool,
    /// Train only every N-th cell of the sweep, starting at cell I (0-based, e.g. a Slurm array's
    /// task id); results go to `<out>/<run>/shard-I-of-N/`, joined by `train merge`.
    #[arg(long, value_name = "I/N", requires = "sweep")]
    pub shard: Option<Shard>,
    /// Where results tables and plots go.
    #[arg(long, default_value = "train/results", value_name = "DIR")]
    pub out: PathBuf,
    /// Where trained models go.
    #[arg(long, default_value = "models", value_name = "DIR")]
    pub models_dir: PathBuf,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `zoo` subcommands.
#[derive(Debug, Subcommand)]
pub enum ZooCommand {
    /// Copy a sweep's models into a zoo folder, store their trunk once, time each here, write index.{json,md}.
    Build(ZooBuildArgs),
}

/// `zoo build` arguments.
#[derive(Debug, Args)]
pub struct ZooBuildArgs {
    /// The sweep's results.json (e.g. train/results/zoo/ferplus-mobilenet_v2/results.json).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,
    /// A fine-tuned model folder (own trunk, e.g. models/default) to add beside the sweep's cells.
    #[arg(long = "add", value_name = "DIR")]
    pub added: Vec<PathBuf>,
    /// The zoo folder to write.
    #[arg(long, default_value = "models/zoo", value_name = "DIR")]
    pub out: PathBuf,
    /// Timed runs per model (the index keeps the median).
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
}

/// What `train` can do besides training.
#[derive(Debug, Subcommand)]
pub enum TrainAction {
    /// Merge the results of a sweep's shards (`train --shard I/N`) into the table one unsharded run writes.
    Merge(MergeArgs),
}

/// `train merge` arguments.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results folders (`<out>/<run>/shard-I-of-N`), every shard of the sweep once.
    #[arg(required = true, value_name = "DIR")]
    pub shards: Vec<PathBuf>,
    /// Folder for the merged results.{json,csv,md} and figures (default: the folder holding the first shard).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `finetune` flags.
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Training data (its train split; the valid/test split is evaluated after every epoch).
    #[command(flatten)]
    pub source: DataSource,
    /// Model folder to start from (patch-to-patch or learned-assignment, mobilenet_v2 embedder).
    #[arg(long, default_value = "models/default", value_name = "DIR")]
    pub init: PathBuf,
    /// ImageNet MobileNetV2 weights for a starting model that has no fine-tuned trunk.
    #[arg(long, value_name = "FILE")]
    pub embedder_weights: Option<PathBuf>,
    /// Model folder to write (config.json, model.mpk, embedder.mpk, meta.json, finetune.json).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Epochs.
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Faces per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak Adam learning rate of the ViT.
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// Peak Adam learning rate of the MobileNetV2 trunk.
    #[arg(long, default_value_t = 1e-4)]
    pub embed_lr: f64,
    /// Linear warm-up steps before the cosine decay.
    #[arg(long, default_value_t = 300)]
    pub warmup_steps: usize,
    /// Label smoothing of the cross-entropy.
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f32,
    /// Keep the trunk's stem and first N of its 13 blocks frozen (0 = train the whole trunk).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub freeze_blocks: usize,
    /// Train on the FER+ annotators' vote distributions (<data>/votes/*_label.csv) as soft targets
    /// instead of the majority labels alone.
    #[arg(long)]
    pub soft_labels: bool,
    /// Average the weights of the last N epochs (stochastic weight averaging) and write that
    /// average; 0 writes the last epoch's weights.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub swa_epochs: usize,
    /// With --swa-epochs: the fraction of the peak learning rates the cosine decays to and holds
    /// during the averaged epochs.
    #[arg(long, default_value_t = 0.5, value_name = "FRACTION")]
    pub swa_lr: f64,
    /// Seed of shuffles, augmentations and stochastic depth.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Train on the faces as they are (no mirror, rotation, zoom, shift or jitter).
    #[arg(long)]
    pub no_augment: bool,
    /// Wall-clock budget in minutes: after the first epoch, train only as many epochs as fit.
    #[arg(long, value_name = "MINUTES")]
    pub budget_min: Option<f64>,
    /// Continue from the last checkpoint of this run (train/runs/finetune/<--out>); the other
    /// flags must be the ones it started with (--device, --depthwise and --budget-min may change).
    #[arg(long)]
    pub resume: bool,
    /// How the trunk's 3×3 depthwise layers are computed while training (same values either way).
    #[arg(long, value_enum, default_value_t = Depthwise::Auto)]
    pub depthwise: Depthwise,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// How `finetune` computes the trunk's 3×3 depthwise convolutions: a speed choice, not a model one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Depthwise {
    /// Whichever was measured faster on the device (see README, "Default model").
    Auto,
    /// The backend's grouped convolution.
    Grouped,
    /// Nine shifted, per-channel-scaled products (cheap gradients on every backend).
    Shifted,
}

/// `average` flags.
#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Fine-tuned model folders (same configuration, started from one model).
    #[arg(required = true, num_args = 2..)]
    pub models: Vec<PathBuf>,
    /// Data whose valid/test split scores the average (its metrics go into meta.json).
    #[command(flatten)]
    pub source: DataSource,
    /// Model folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `eval` flags.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Evaluation data.
    #[command(flatten)]
    pub source: DataSource,
    /// Model folder (default: the shipped default model).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Split to evaluate (test, valid, or all for unsplit folders).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Mirror-image test-time augmentation on or off (default: the model folder's `flip_tta`).
    #[arg(long, value_name = "BOOL")]
    pub flip_tta: Option<bool>,
    /// Zoomed-view test-time augmentation on or off (default: the model folder's `zoom_tta`).
    #[arg(long, value_name = "BOOL")]
    pub zoom_tta: Option<bool>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `predict` flags.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder (default: the shipped default model).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Face images, already cropped.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `select` flags.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Choose among a sweep's models (its results.json) instead of the shipped zoo.
    #[arg(long, value_name = "FILE", conflicts_with = "zoo")]
    pub results: Option<PathBuf>,
    /// Choose among the models of this zoo folder (default: the shipped models/zoo).
    #[arg(long, value_name = "DIR")]
    pub zoo: Option<PathBuf>,
    /// Per-frame latency budget in milliseconds (default: run.budget_ms).
    #[arg(long)]
    pub budget_ms: Option<f64>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Camera index to capture from.
    #[arg(long, value_name = "N", conflicts_with = "input")]
    pub camera: Option<u32>,
    /// List cameras and exit.
    #[arg(long)]
    pub list_cameras: bool,
    /// An image, a folder of frames (name order), a .gif, a video file (.mp4, .mkv, .avi, .webm,
    /// .mov, …) or a stream URI (rtsp://, http://), instead of a camera.
    #[arg(long, value_name = "PATH|URI")]
    pub input: Option<PathBuf>,
    /// A GStreamer pipeline ending in `appsink`, played as a live source (e.g. a Jetson CSI camera:
    /// "nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=RGB ! appsink").
    #[arg(long, value_name = "PIPELINE", conflicts_with_all = ["input", "camera"])]
    pub gst: Option<String>,
    /// Model folder (default: chosen by `select`).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Mirror-image test-time augmentation on or off (default: the model folder's `flip_tta`;
    /// off halves the per-face cost on slow devices).
    #[arg(long, value_name = "BOOL")]
    pub flip_tta: Option<bool>,
    /// Zoomed-view test-time augmentation on or off (default: the model folder's `zoom_tta`;
    /// each of zoom and mirror doubles the per-face cost).
    #[arg(long, value_name = "BOOL")]
    pub zoom_tta: Option<bool>,
    /// Override the selected clustering method.
    #[arg(long)]
    pub method: Option<Grouping>,
    /// Override the selected k.
    #[arg(long)]
    pub k: Option<usize>,
    /// No window.
    #[arg(long)]
    pub headless: bool,
    /// Write one JSON line per frame to FILE, or - for stdout.
    #[arg(long, value_name = "FILE|-")]
    pub jsonl: Option<String>,
    /// Write overlaid frames as PNG into DIR.
    #[arg(long, value_name = "DIR")]
    pub save_annotated: Option<PathBuf>,
    /// Tint each face's 16×16 patches by cluster.
    #[arg(long)]
    pub show_clusters: bool,
    /// Per-frame latency budget in milliseconds (default: run.budget_ms).
    #[arg(long)]
    pub budget_ms: Option<f64>,
    #[command(flatten)]
    pub detector: DetectorFlags,
    #[command(flatten)]
    pub schedule: ScheduleFlags,
    /// Play --input this many times; 0 = forever (a soak test loops a folder).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loops: u64,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `--device`, shared by every command that runs a model.
#[derive(Debug, Args)]
pub struct DeviceFlag {
    /// Compute device for the detector, embedder and ViT (clustering stays on the CPU): cpu
    /// (burn-ndarray), cuda (needs the `cuda` build feature and an NVIDIA driver) or flex
    /// (burn-flex on the CPU; needs the `flex` build feature).
    #[arg(long = "device", value_enum, default_value_t = DeviceChoice::Cpu)]
    pub choice: DeviceChoice,
}

impl DeviceFlag {
    /// The chosen device, checked against this binary's features and this machine's driver.
    pub fn checked(&self) -> anyhow::Result<DeviceChoice> {
        self.choice.available()
    }
}

/// Face-detector flags shared by `run`, `bench pipeline` and `bench detect`.
#[derive(Debug, Args)]
pub struct DetectorFlags {
    /// Width frames are downscaled to for face detection (default: run.detect_width).
    #[arg(long, value_name = "PX")]
    pub detect_width: Option<u32>,
    /// Minimum face-detector score, in (0, 1) (default: run.detect_threshold).
    #[arg(long, value_name = "SCORE")]
    pub detect_threshold: Option<f32>,
}

impl DetectorFlags {
    /// Face-detector settings from the config's `[run]` section, with these flags' overrides.
    pub fn detector_config(&self, config: &paca_fer::config::Config) -> paca_fer::face::DetectorConfig {
        paca_fer::face::DetectorConfig {
            width: self.detect_width.unwrap_or(config.run.detect_width),
            threshold: self.detect_threshold.unwrap_or(config.run.detect_threshold),
            roi_width: config.run.redetect_width,
            ..paca_fer::face::DetectorConfig::default()
        }
    }
}

/// When the detector runs: flags shared by `run` and `bench pipeline`.
#[derive(Debug, Args)]
pub struct ScheduleFlags {
    /// Run the face detector on the whole frame every n-th frame (default: run.detect_every).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub detect_every: Option<u32>,
    /// Re-detect known faces in windows around them between full passes (default: run.redetect).
    #[arg(long, value_name = "BOOL")]
    pub redetect: Option<bool>,
}

impl ScheduleFlags {
    /// Puts these flags' overrides into `opts`.
    pub fn apply(&self, opts: &mut paca_fer::pipeline::RunOptions) {
        if let Some(n) = self.detect_every {
            opts.detect_every = n;
        }
        if let Some(r) = self.redetect {
            opts.redetect = r;
        }
    }
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time clustering of every image in a float32 .npy of shape [images, 36, d].
    Cluster(BenchClusterArgs),
    /// Time training steps (forward + backward + Adam) of the default model.
    Train(BenchTrainArgs),
    /// Time the live pipeline over a folder of frames.
    Pipeline(BenchPipelineArgs),
    /// Make 640×480 benchmark frames with real faces at known boxes (`--hard`: 0–4 faces, clutter, blur).
    Frames(BenchFramesArgs),
    /// Score the face detector on a folder of frames with known boxes (`bench frames` makes them).
    Detect(BenchDetectArgs),
}

/// `bench detect` flags.
#[derive(Debug, Args)]
pub struct BenchDetectArgs {
    /// Folder of frames with their `boxes.json` (as `bench frames` writes).
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Model folder that labels the found faces (default: as `run` chooses).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorFlags,
    /// Threads the detector may use (the live pipeline gives it one).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Score at most this many frames (name order).
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Skip labelling the faces (detection numbers only; faster).
    #[arg(long)]
    pub no_labels: bool,
}

/// `bench cluster` flags.
#[derive(Debug, Args)]
pub struct BenchClusterArgs {
    /// Float32 .npy of shape [n_images, 36, d].
    #[arg(long, value_name = "FILE.npy")]
    pub embeddings: PathBuf,
    /// kmeans, agglomerative, spectral, gmm or dbscan.
    #[arg(long)]
    pub method: String,
    /// Clusters per image.
    #[arg(long)]
    pub k: usize,
    /// Worker threads (images are clustered in parallel).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write the labels as an int32 .npy of shape [n_images, 36].
    #[arg(long, value_name = "OUT.npy")]
    pub labels_out: Option<PathBuf>,
    /// Seed of the randomised methods.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `bench train` flags.
#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Images per step (default: train.batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Timed steps after warm-up.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Training threads, one batch shard each; 0 = one per core (default: train.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `bench pipeline` flags.
#[derive(Debug, Args)]
pub struct BenchPipelineArgs {
    /// Folder of frames (e.g. 640×480 with one face each; `bench frames` makes them).
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Model folder (default: as `run` chooses).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorFlags,
    #[command(flatten)]
    pub schedule: ScheduleFlags,
    /// Play the folder this many times.
    #[arg(long, default_value_t = 1)]
    pub loops: u64,
    /// Frame rate of the paced pass that measures latency (a webcam's 30 FPS).
    #[arg(long, default_value_t = 30.0)]
    pub source_fps: f64,
    /// Mirror-image test-time augmentation on or off (default: as `run`).
    #[arg(long, value_name = "BOOL")]
    pub flip_tta: Option<bool>,
    /// Zoomed-view test-time augmentation on or off (default: as `run`).
    #[arg(long, value_name = "BOOL")]
    pub zoom_tta: Option<bool>,
    /// Compute device.
    #[command(flatten)]
    pub device: DeviceFlag,
}

/// `bench frames` flags.
#[derive(Debug, Args)]
pub struct BenchFramesArgs {
    /// FER+ (or any supported) dataset whose faces are placed into the frames.
    #[command(flatten)]
    pub source: DataSource,
    /// Output folder (frame_0000.png … and boxes.json with each face's box).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Frames to make.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Face side in pixels (FER+ faces are 48 px; 192 is a face about 1 m from a webcam).
    #[arg(long, default_value_t = 192)]
    pub face_px: u32,
    /// Seed of face choice and placement.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames per face: each face stays this long, drifting slowly (30 = one second at 30 FPS).
    #[arg(long, default_value_t = 30)]
    pub shot: usize,
    /// Hard frames instead: each its own scene with 0..=--max-faces faces of 40–250 px pasted with
    /// soft edges, on walls, shelves, clutter or blobs, with blur, noise and lighting changes.
    #[arg(long)]
    pub hard: bool,
    /// Most faces in a hard frame.
    #[arg(long, default_value_t = 4)]
    pub max_faces: usize,
}
