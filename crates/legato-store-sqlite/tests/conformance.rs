//! The conformance stories on a real SQLite file in a temporary folder: the catalog's, and
//! the blob contract's over the `chunks` table.

use std::sync::Arc;

use legato_store::{DynStore, Store};
use legato_store_sqlite::SqliteStore;

async fn fresh_store() -> DynStore {
    // The folder must outlive the store: kept, and swept by a later run.
    let dir = legato_test_support::scratch::kept_dir("legato-sqlite-conformance-");
    Store::local(Arc::new(SqliteStore::open_dir(&dir).unwrap()))
}

mod catalog {
    use super::fresh_store;

    legato_store::conformance_tests!(fresh_store());
}

mod blobs {
    use super::fresh_store;

    legato_store::blob_conformance_tests!(async {
        let store = fresh_store().await;
        (store.blobs().clone(), Some(store))
    });
}
