//! `paca-fer select`: which model the runtime would run on this machine, and why.

use anyhow::Result;

use super::args::SelectArgs;
use super::print_json;
use paca_fer::config::Config;
use paca_fer::select::{Source, select};

/// Runs `select`.
pub fn run(a: &SelectArgs, config: &Config, json: bool) -> Result<()> {
    let device = a.device.checked()?;
    let source = match (&a.results, &a.zoo) {
        (Some(r), _) => Source::Results(r.clone()),
        (None, Some(z)) => Source::Zoo(z.clone()),
        (None, None) => Source::shipped_zoo(),
    };
    if let Source::Zoo(dir) = &source
        && !source.path().is_file()
    {
        anyhow::bail!(
            "no model zoo at {} (build one with `paca-fer zoo build RESULTS`, or pass --results FILE); without a zoo `run` uses {}",
            dir.display(),
            paca_fer::classify::DEFAULT_MODEL
        );
    }
    let budget = a.budget_ms.unwrap_or(config.run.budget_ms);
    let weight = config.run.latency_weight;
    let s = paca_fer::on_device!(device, |B, _D, dev| select::<B>(
        &source, budget, weight, true, &dev
    )?);
    if json {
        return print_json(&serde_json::to_value(&s)?);
    }
    println!("{}: {}", s.chosen.model_dir.display(), s.reason);
    println!(
        "{:<22} {:>9} {:>9} {:>9}  from {}",
        "model",
        "accuracy",
        "macro-F1",
        "ms/face",
        s.source.display()
    );
    for c in &s.candidates {
        let note = match (c.available, c.measured) {
            (false, _) => " (not here)",
            (true, false) => " (recorded)",
            (true, true) => "",
        };
        println!(
            "{:<22} {:>8.2}% {:>9.3} {:>9.2}{note}{}",
            c.trained.name,
            c.trained.accuracy * 100.0,
            c.trained.macro_f1,
            c.latency_ms,
            if c.trained.name == s.chosen.trained.name {
                "  <- chosen"
            } else {
                ""
            }
        );
    }
    Ok(())
}
