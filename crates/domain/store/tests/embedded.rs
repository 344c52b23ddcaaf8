//! The embedded (SQLite) backend runs the store conformance suite.
mod conformance;

use conformance::Harness;
use postgate_store::{Backend, Store};
use std::sync::{Arc, OnceLock};

/// An embedded store in a temporary data directory.
struct Embedded {
    dir: tempfile::TempDir,
    first: OnceLock<Arc<dyn Store>>,
}

impl Embedded {
    fn new() -> Embedded {
        Embedded {
            dir: tempfile::tempdir().unwrap(),
            first: OnceLock::new(),
        }
    }
}

impl Harness for Embedded {
    fn open(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>> + Send + '_>> {
        Box::pin(async move {
            let backend = Backend::Embedded {
                data_dir: self.dir.path().to_path_buf(),
            };
            // The first handle stays open for the harness's life; each call
            // after it is another process's view of the same file.
            let store = postgate_store::open(&backend).await.unwrap();
            self.first.get_or_init(|| store.clone());
            store
        })
    }
}

suite!(Embedded::new());
