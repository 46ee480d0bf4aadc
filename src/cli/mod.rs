//! Command-line interface: argument definitions and dispatch to one handler per subcommand.

mod args;
mod average_cmd;
mod bench_cmd;
mod bench_detect;
mod bench_pipeline;
mod data_cmd;
mod finetune_cmd;
mod infer_cmd;
mod run_cmd;
mod select_cmd;
mod train_cmd;
mod zoo_cmd;

pub use args::{Cli, Command};

use anyhow::Result;
use clap::Parser;

use paca_fer::config::Config;

/// Parses the command line, runs the subcommand and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.quiet { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .target(env_logger::Target::Stderr)
        .init();
    match dispatch(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Loads the configuration named by `--config` (or the defaults) and runs the chosen subcommand.
pub fn dispatch(cli: &Cli) -> Result<()> {
    let config = Config::resolve(cli.config.as_deref())?;
    match &cli.command {
        Command::Data(a) => data_cmd::run(a, &config, cli.json),
        Command::Train(a) => train_cmd::run(a, &config, cli.json),
        Command::Finetune(a) => finetune_cmd::run(a, &config, cli.json),
        Command::Average(a) => average_cmd::run(a, &config, cli.json),
        Command::Eval(a) => infer_cmd::eval(a, &config, cli.json),
        Command::Predict(a) => infer_cmd::predict(a, &config, cli.json),
        Command::Select(a) => select_cmd::run(a, &config, cli.json),
        Command::Run(a) => run_cmd::run(a, &config, cli.json),
        Command::Bench(a) => bench_cmd::run(a, &config, cli.json),
        Command::Zoo(a) => zoo_cmd::run(a, cli.json),
    }
}

/// Prints one JSON object on stdout (the `--json` contract: exactly one object, logs go to stderr).
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
