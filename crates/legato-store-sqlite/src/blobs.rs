//! The blob contract over the `chunks` table: a chunk's bytes belong to a track the catalog
//! knows (the table's foreign key), so a put for an unknown track is `NotFound`.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use legato_store::{Blobs, Catalog, Result, StoreError, TrackId};
use rusqlite::{OptionalExtension, params};

use crate::{Role, SqliteStore, map_err, not_found};

#[async_trait]
impl Blobs for SqliteStore {
    async fn put(&self, id: &TrackId, name: &str, bytes: Bytes) -> Result<()> {
        let (id, name) = (*id, name.to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "INSERT INTO chunks (track_id, name, bytes)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM tracks WHERE id = ?1)
                     ON CONFLICT (track_id, name) DO UPDATE SET bytes = excluded.bytes",
                )
                .map_err(map_err)?
                .execute(params![id.to_string(), name, &bytes[..]])
                .map_err(map_err)?;
            if changed == 0 {
                return Err(not_found(&id));
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        Catalog::get_stored_chunk(self, id, name).await
    }

    async fn get_range(&self, id: &TrackId, name: &str, range: Range<u64>) -> Result<Bytes> {
        let (id, name) = (*id, name.to_owned());
        if range.start > range.end {
            return Err(StoreError::Invalid(format!(
                "range {}..{} of chunk {name} of track {id} ends before it starts",
                range.start, range.end
            )));
        }
        // SQLite counts a blob's bytes from 1; a length past the end is clipped.
        let start = i64::try_from(range.start).unwrap_or(i64::MAX);
        let length = i64::try_from(range.end - range.start).unwrap_or(i64::MAX);
        self.read_as(Role::Bulk, move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT length(bytes), substr(bytes, ?3 + 1, ?4) FROM chunks
                     WHERE track_id = ?1 AND name = ?2",
                )
                .map_err(map_err)?
                .query_row(params![id.to_string(), name, start, length], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
                })
                .optional()
                .map_err(map_err)?;
            match found {
                None => Err(StoreError::NotFound(format!("chunk {name} of track {id}"))),
                Some((len, _)) if start > len => Err(StoreError::Invalid(format!(
                    "range {}..{} is outside chunk {name} of track {id} ({len} bytes)",
                    range.start, range.end
                ))),
                Some((_, bytes)) => Ok(Bytes::from(bytes.unwrap_or_default())),
            }
        })
        .await
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
