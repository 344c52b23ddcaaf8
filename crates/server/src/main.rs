//! `postgate`: the one binary. `serve` runs the services; the other commands
//! administer the post office directly in the data directory, whether or not
//! a server is running on it.
#![deny(missing_docs)]

mod admin;
mod backup;
mod cli;
mod dkim;
mod import;
mod logs;
mod serve;

use clap::Parser;

/// Opens the configured store: every command and `serve` go through here.
pub(crate) async fn open_store(
    config: &postgate_runtime::Config,
) -> anyhow::Result<std::sync::Arc<dyn postgate_store::Store>> {
    Ok(postgate_store::open(&store_backend(config)).await?)
}

/// The configured backend, as the store crate names it.
pub(crate) fn store_backend(config: &postgate_runtime::Config) -> postgate_store::Backend {
    use postgate_runtime::config::StoreBackend;
    match config.store.backend {
        StoreBackend::Embedded => postgate_store::Backend::Embedded {
            data_dir: config.data_dir.clone(),
        },
        StoreBackend::Postgres => {
            postgate_store::Backend::Postgres(postgate_store::postgres::PgOptions {
                url: config.store.url.clone().unwrap_or_default(),
                pool_size: config.store.pool_size,
                node: config
                    .store
                    .node
                    .clone()
                    .unwrap_or_else(|| config.hostname.clone()),
                ca_file: config.store.ca_file.clone(),
            })
        }
    }
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
