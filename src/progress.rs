//! Progress bars for long work (embedding a dataset, training epochs), hidden when asked.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `msg`, or a hidden one when `show` is false (tests, `--json`).
pub fn bar(show: bool, len: u64, msg: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(msg.to_string());
    bar
}
