//! What the tests share: the shared SeaweedFS under a prefix of each test's own (from
//! legato-test-support's `seaweedfs`), stores over it.

use std::sync::Arc;
use std::time::Duration;

use legato_store::DynStore;
use legato_store_s3::{BlobsUri, Bucket, ObjectChunks, ObjectOptions};
use legato_test_support::{ferretdb, seaweedfs};

/// The shared bucket under a fresh prefix for `purpose`, with its keys.
pub fn test_bucket(purpose: &str) -> Bucket {
    let keys = seaweedfs::shared_keys();
    let uri = BlobsUri::parse(&seaweedfs::fresh_blobs_uri(purpose))
        .unwrap()
        .with_credential_files(&keys.join("access_key"), &keys.join("secret_key"))
        .unwrap();
    Bucket::new(uri).unwrap()
}

pub fn no_sweep() -> ObjectOptions {
    ObjectOptions {
        gc_grace: Duration::from_secs(3600),
        gc_every: None,
    }
}

pub fn sqlite() -> DynStore {
    // The folder must outlive the store: kept, and swept by a later run.
    let dir = legato_test_support::scratch::kept_dir("legato-s3-tests-");
    Arc::new(legato_store_sqlite::SqliteStore::open_dir(&dir).unwrap())
}

pub async fn fresh_on_sqlite() -> DynStore {
    ObjectChunks::new(sqlite(), test_bucket("story"), no_sweep())
}

pub async fn fresh_on_mongo() -> DynStore {
    let uri = ferretdb::shared_uri();
    let database = ferretdb::unique_database("legato_s3");
    let options = legato_store_mongo::MongoOptions {
        database: Some(database),
        ..legato_store_mongo::MongoOptions::default()
    };
    let meta: DynStore = Arc::new(
        legato_store_mongo::MongoStore::connect(&uri, options)
            .await
            .unwrap(),
    );
    ObjectChunks::new(meta, test_bucket("story"), no_sweep())
}
