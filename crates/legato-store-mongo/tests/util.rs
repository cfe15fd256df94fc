//! What the tests share: the server under test, fresh databases. (A FerretDB of a test's own
//! is legato-test-support's `ferretdb::FerretDb`.)

use std::sync::Arc;

use legato_store::DynStore;
use legato_store_mongo::{MongoOptions, MongoStore};
use legato_test_support::ferretdb;
use mongodb::Client;
use mongodb::bson::Document;

/// The server under test; failing (not skipping) when none is configured.
pub fn test_uri() -> String {
    ferretdb::shared_uri()
}

/// A database name no other test (or earlier run) uses.
pub fn unique_database(purpose: &str) -> String {
    ferretdb::unique_database(&format!("legato_{purpose}"))
}

pub fn options_for(database: &str) -> MongoOptions {
    MongoOptions {
        database: Some(database.to_owned()),
        ..MongoOptions::default()
    }
}

pub async fn fresh_mongo(purpose: &str) -> MongoStore {
    let database = unique_database(purpose);
    MongoStore::connect(&test_uri(), options_for(&database))
        .await
        .unwrap()
}

pub async fn fresh_store() -> DynStore {
    legato_store::Store::local(Arc::new(fresh_mongo("story").await))
}

/// The plain driver, as the seed's functions use it.
pub async fn plain(uri: &str, database: &str) -> mongodb::Database {
    Client::with_uri_str(uri).await.unwrap().database(database)
}

pub fn plain_collection(db: &mongodb::Database, name: &str) -> mongodb::Collection<Document> {
    db.collection(name)
}
