//! What the tests share: the shared SeaweedFS under a prefix of each test's own (from
//! legato-test-support's `seaweedfs`), stores over it.

use std::sync::Arc;

use legato_store::{DynStore, Store};
use legato_store_s3::{BlobsUri, Bucket};
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

/// `local`'s catalog with its chunk bytes in `bucket`.
pub fn on_objects(local: &DynStore, bucket: &Bucket) -> DynStore {
    Store::with_objects(local.catalog().clone(), Arc::new(bucket.clone()))
}

pub fn sqlite() -> DynStore {
    // The folder must outlive the store: kept, and swept by a later run.
    let dir = legato_test_support::scratch::kept_dir("legato-s3-tests-");
    Store::local(Arc::new(
        legato_store_sqlite::SqliteStore::open_dir(&dir).unwrap(),
    ))
}

pub async fn fresh_on_sqlite() -> DynStore {
    on_objects(&sqlite(), &test_bucket("story"))
}

pub async fn mongo(prefix: &str) -> DynStore {
    let uri = ferretdb::shared_uri();
    let database = ferretdb::unique_database(prefix);
    let options = legato_store_mongo::MongoOptions {
        database: Some(database),
        ..legato_store_mongo::MongoOptions::default()
    };
    Store::local(Arc::new(
        legato_store_mongo::MongoStore::connect(&uri, options)
            .await
            .unwrap(),
    ))
}

pub async fn fresh_on_mongo() -> DynStore {
    on_objects(&mongo("legato_s3").await, &test_bucket("story"))
}
