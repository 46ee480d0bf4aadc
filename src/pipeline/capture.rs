//! The capture stage: reads frames from the source, skips bad frames of recordings, retries a
//! faulting live source with back-off, and gives up on one that stays broken.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::channel::Lane;
use super::source::{SourceError, SourceOpener};

/// Retry behaviour when a live source faults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First back-off after a fault.
    pub initial: Duration,
    /// Longest back-off.
    pub max: Duration,
    /// A source failing (or stalled) for this long is gone for good.
    pub give_up: Duration,
}

impl Default for RetryPolicy {
    /// 50 ms doubling to 2 s; give up after 10 s without a good frame.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            give_up: Duration::from_secs(10),
        }
    }
}

/// A frame as read, with its input index and capture time.
pub(super) struct Captured {
    pub index: u64,
    pub t: Instant,
    pub image: Arc<RgbImage>,
    /// The stream timestamp, where the source has one.
    pub pts: Option<Duration>,
}

/// Counters and the current alert, shared by the stages and read by the output loop.
#[derive(Default)]
pub(super) struct Shared {
    pub frames_in: AtomicU64,
    pub skipped: AtomicU64,
    pub faults: AtomicU64,
    alert: Mutex<Option<String>>,
}

impl Shared {
    /// Sets (or clears) the alert shown on the overlay.
    pub fn set_alert(&self, a: Option<String>) {
        if let Ok(mut g) = self.alert.lock() {
            *g = a;
        }
    }

    /// The current alert.
    pub fn alert(&self) -> Option<String> {
        self.alert.lock().ok().and_then(|g| g.clone())
    }
}

/// What the capture thread needs besides the source and its lane.
pub(super) struct CaptureCfg {
    pub stop: Arc<AtomicBool>,
    pub retry: RetryPolicy,
    pub max_frames: Option<u64>,
}

/// Reads frames until the end, a stop, the next stage leaving, or the source is gone for good
/// (returned as the error).
pub(super) fn capture(
    opener: SourceOpener,
    tx: Lane<Captured>,
    opts: CaptureCfg,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let mut src = opener().map_err(|e| e.to_string())?;
    let live = src.is_live();
    log::info!("source: {}", src.describe());
    let mut backoff = opts.retry.initial;
    let mut failing_since: Option<Instant> = None;
    let mut size: Option<(u32, u32)> = None;
    let mut index = 0u64;
    while !opts.stop.load(Ordering::Relaxed) && opts.max_frames.is_none_or(|m| index < m) {
        let fault = match src.next_frame() {
            Ok(None) => break,
            Ok(Some(img)) if img.width() == 0 || img.height() == 0 => {
                Some(format!("{}: empty frame", src.describe()))
            }
            Ok(Some(img)) => {
                if size.is_some_and(|s| s != img.dimensions()) {
                    log::warn!(
                        "{}: frame size changed from {:?} to {:?}",
                        src.describe(),
                        size.unwrap_or_default(),
                        img.dimensions()
                    );
                }
                size = Some(img.dimensions());
                if failing_since.take().is_some() {
                    log::info!("{}: recovered", src.describe());
                    shared.set_alert(None);
                }
                backoff = opts.retry.initial;
                shared.frames_in.fetch_add(1, Ordering::Relaxed);
                let c = Captured {
                    index,
                    t: Instant::now(),
                    image: Arc::new(img),
                    pts: src.timestamp(),
                };
                index += 1;
                if tx.send(c).is_err() {
                    break;
                }
                None
            }
            Err(SourceError::Transient(m)) => Some(m),
            Err(SourceError::Gone(m)) => return Err(m),
        };
        if let Some(msg) = fault {
            shared.faults.fetch_add(1, Ordering::Relaxed);
            if !live {
                // A bad file in a recording: skip it and go on.
                log::warn!("skipping frame: {msg}");
                shared.skipped.fetch_add(1, Ordering::Relaxed);
                index += 1;
                continue;
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= opts.retry.give_up {
                return Err(format!(
                    "{msg}; no good frame for {:.0} s, giving up",
                    since.elapsed().as_secs_f64()
                ));
            }
            log::warn!("{msg}; retrying in {} ms", backoff.as_millis());
            shared.set_alert(Some(format!("source fault, retrying: {msg}")));
            sleep_unless_stopped(backoff, &opts.stop);
            backoff = (backoff * 2).min(opts.retry.max);
        }
    }
    Ok(())
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(10).min(end.saturating_duration_since(Instant::now())));
    }
}
