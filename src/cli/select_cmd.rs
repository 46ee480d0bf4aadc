//! `paca-fer select`: pick method/k from the sweep's results for this machine's frame budget.

use anyhow::Result;

use super::args::SelectArgs;
use super::print_json;
use paca_fer::config::Config;
use paca_fer::select::{results_path, select};

/// Runs `select`.
pub fn run(a: &SelectArgs, config: &Config, json: bool) -> Result<()> {
    let path = results_path(&a.results)?;
    let budget = a.budget_ms.unwrap_or(config.run.budget_ms);
    let s = select(&path, budget, config.run.latency_weight, true)?;
    if json {
        print_json(&serde_json::to_value(&s)?)?;
    } else {
        println!("{}", s.reason);
        println!(
            "{:<14} {:>3} {:>9} {:>9} {:>11}",
            "method", "k", "accuracy", "macro-F1", "ms/face"
        );
        for c in &s.candidates {
            println!(
                "{:<14} {:>3} {:>8.2}% {:>9.3} {:>10.2}{}",
                c.method,
                c.k,
                c.accuracy * 100.0,
                c.macro_f1,
                c.latency_ms,
                if c.measured { "" } else { " (from file)" }
            );
        }
    }
    Ok(())
}
