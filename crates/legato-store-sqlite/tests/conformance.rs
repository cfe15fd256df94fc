//! The backend conformance story, on a real SQLite file in a temporary folder.

use std::sync::Arc;

use legato_store::DynStore;
use legato_store_sqlite::SqliteStore;

async fn fresh_store() -> DynStore {
    // The folder must outlive the store: kept, and swept by a later run.
    let dir = legato_test_support::scratch::kept_dir("legato-sqlite-conformance-");
    Arc::new(SqliteStore::open_dir(&dir).unwrap())
}

legato_store::conformance_tests!(fresh_store());
