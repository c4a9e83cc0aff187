//! The `reconcile` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = reconcile::cli::Cli::parse();
    reconcile::cli::init_tracing(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    std::process::ExitCode::from(runtime.block_on(reconcile::cli::run(cli)))
}
