//! `postgate`: the one binary. `serve` runs the services; the other commands
//! administer the post office directly in the data directory, whether or not
//! a server is running on it.
#![deny(missing_docs)]

mod admin;
mod cli;
mod logs;
mod serve;

use clap::Parser;

/// Opens the configured store: every command and `serve` go through here.
pub(crate) fn open_store(
    config: &postgate_runtime::Config,
) -> anyhow::Result<std::sync::Arc<dyn postgate_store::Store>> {
    let backend = match config.store.backend {
        postgate_runtime::config::StoreBackend::Embedded => postgate_store::Backend::Embedded {
            data_dir: config.data_dir.clone(),
        },
    };
    Ok(postgate_store::open(&backend)?)
}
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("postgate")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
