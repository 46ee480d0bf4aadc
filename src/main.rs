//! The `paca-fer` binary: a thin shell over [`paca_fer::cli`].

fn main() -> std::process::ExitCode {
    paca_fer::cli::main()
}
