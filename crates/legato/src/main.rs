//! `legato`: the all-in-one server, the OpenFaaS functions and the command-line client.
//!
//! This binary only parses flags, picks the store once and starts the routers that
//! `legato-http` provides; everything else lives in the library crates.

mod cli;
mod client_cli;
#[cfg(test)]
mod docs_check;
mod function;
mod import;
mod memory;
mod serve;
mod settings;
mod store;
mod user_cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    memory::return_large_buffers();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("legato: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("legato: {err:#}");
            if err.is::<settings::BadSetting>() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    };
    // A transcode abandoned at shutdown (its job released to another process) must not hold
    // the exit: blocking threads are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LEGATO_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
