//! Arbitrary text as a `--config` overlay and as a sweep file: parse + validate must return a
//! value or an error naming the file, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use paca_fer::config::Config;
use paca_fer::train::sweep::Sweep;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Config::from_toml_str(text, path) {
        Ok(config) => {
            let _ = config.validate(path);
        }
        Err(e) => assert!(
            e.to_string().contains("fuzz.toml"),
            "error does not name the file: {e}"
        ),
    }
    if let Ok(sweep) = Sweep::from_toml_str(text, path) {
        let _ = sweep.cells();
    }
});
