//! The `paca-fer` binary: the command line (flags, logging, Ctrl-C, printing) over the
//! `paca_fer` library, which returns typed results and prints nothing.

mod cli;

fn main() -> std::process::ExitCode {
    // Parallelism comes from training shards, rayon over batches and the runtime's pipeline
    // threads; matrixmultiply's own GEMM threads on top would oversubscribe the cores.
    // A user's explicit setting wins.
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // SAFETY: the first statement of `main`, before any other thread exists.
        unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
    }
    cli::main()
}
