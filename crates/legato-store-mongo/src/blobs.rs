//! The blob contract over the seed's `chunks` collection: a chunk is found by its predictable
//! `_id` (or, written by the seed, by track and name), so the seed reads what is put here.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use legato_store::{Blobs, Catalog, Chunk, Result, StoreError, TrackId, slice_range};
use mongodb::bson::{Bson, doc};

use crate::{MongoStore, schema};

#[async_trait]
impl Blobs for MongoStore {
    async fn put(&self, id: &TrackId, name: &str, bytes: Bytes) -> Result<()> {
        let oid = schema::chunk_oid(id, name);
        let document = schema::chunk_doc(oid, &id.to_string(), &Chunk::new(name, bytes));
        self.timed(
            self.inner
                .chunks
                .replace_one(doc! { "_id": oid }, document)
                .upsert(true),
        )
        .await
        .map(drop)
    }

    async fn get(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        match self.chunk_bytes(id, name).await? {
            Some(Bson::Binary(binary)) => Ok(Bytes::from(binary.bytes)),
            Some(_) => Err(StoreError::Backend(format!(
                "chunk {name} of track {id} does not hold binary data"
            ))),
            None => Err(StoreError::NotFound(format!("chunk {name} of track {id}"))),
        }
    }

    async fn get_range(&self, id: &TrackId, name: &str, range: Range<u64>) -> Result<Bytes> {
        // A document is read whole (16 MB at most); the range is cut here.
        let bytes = Blobs::get(self, id, name).await?;
        slice_range(bytes, range, || format!("chunk {name} of track {id}"))
    }

    async fn delete(&self, id: &TrackId, names: &[String]) -> Result<()> {
        Catalog::delete_chunks(self, id, names.to_vec()).await
    }

    async fn list(&self, id: &TrackId) -> Result<Vec<String>> {
        Catalog::chunk_names(self, id).await
    }

    async fn ping(&self) -> Result<()> {
        Catalog::ping(self).await
    }

    fn describe(&self) -> String {
        Catalog::describe(self)
    }
}
