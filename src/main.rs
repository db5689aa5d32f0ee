//! Parses the command line and maps outcomes to exit codes; everything else is the library.
//! 0: ok. 1: a drill ran and its verdict is "fail". 2: bad input or environment.
//! 130: interrupted (after tearing down what the run started).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = etcd_drill::cli::Cli::parse();
    etcd_drill::cli::init_tracing();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcd-drill: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome: anyhow::Result<etcd_drill::cli::Outcome> =
        rt.block_on(etcd_drill::cli::run(cli)).map_err(Into::into);
    match outcome {
        Ok(o) => std::process::ExitCode::from(o.exit_code()),
        Err(e) => {
            // Every error's message already carries its cause (and what to do): printing
            // the chain as well would say the cause twice.
            eprintln!("etcd-drill: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
