//! `paca-fer zoo build`: a sweep's models as a zoo the runtime chooses from.

use anyhow::Result;
use serde_json::json;

use super::args::ZooCommand;
use super::print_json;
use paca_fer::zoo::{build, markdown};

/// Runs a `zoo` subcommand.
pub fn run(c: &ZooCommand, json: bool) -> Result<()> {
    match c {
        ZooCommand::Build(a) => {
            let index = build(&a.results, &a.added, &a.out, a.runs)?;
            if json {
                print_json(&json!({ "zoo": a.out, "index": index }))
            } else {
                println!(
                    "{}\nwritten: {}/index.{{json,md}}",
                    markdown(&index),
                    a.out.display()
                );
                Ok(())
            }
        }
    }
}
