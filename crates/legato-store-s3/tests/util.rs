use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use legato_store::DynStore;
use legato_store_s3::{BlobsUri, Bucket, ObjectChunks, ObjectOptions};

const URI_VAR: &str = "LEGATO_TEST_BLOBS";
const KEYS_VAR: &str = "LEGATO_TEST_BLOBS_KEYS";

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need an S3 server. Start one with \
             `scripts/seaweedfs.sh start /tmp/legato-s3 legato-test` (it prints the endpoint) \
             and run `{URI_VAR}='s3://legato-test?endpoint=http://127.0.0.1:PORT' \
             {KEYS_VAR}=/tmp/legato-s3 cargo test -p legato-store-s3`"
        ),
    }
}

/// A prefix no other test (or earlier run) uses.
pub fn unique_prefix(purpose: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{purpose}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test server's URI with `prefix` as the key prefix.
pub fn uri_with_prefix(base: &str, prefix: &str) -> BlobsUri {
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    let keys = PathBuf::from(var(KEYS_VAR));
    BlobsUri::parse(&format!("{}/{prefix}?{query}", head.trim_end_matches('/')))
        .unwrap()
        .with_credential_files(&keys.join("access_key"), &keys.join("secret_key"))
        .unwrap()
}

pub fn test_bucket(purpose: &str) -> Bucket {
    Bucket::new(uri_with_prefix(&var(URI_VAR), &unique_prefix(purpose))).unwrap()
}

pub fn no_sweep() -> ObjectOptions {
    ObjectOptions {
        gc_grace: Duration::from_secs(3600),
        gc_every: None,
    }
}

pub fn sqlite() -> DynStore {
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(legato_store_sqlite::SqliteStore::open_dir(&dir).unwrap())
}

pub async fn fresh_on_sqlite() -> DynStore {
    ObjectChunks::new(sqlite(), test_bucket("story"), no_sweep())
}

pub async fn fresh_on_mongo() -> DynStore {
    let uri = var("LEGATO_TEST_MONGODB_URI");
    let database = unique_prefix("legato_s3").replace('-', "_");
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

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/seaweedfs.sh")
}
