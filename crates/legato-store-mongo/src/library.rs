//! The library's version and count: what caches of the library poll, kept from a counter
//! document and the collection's metadata, and the backfill of keys for documents another
//! program (the seed) inserted.

use legato_store::{Result, StoreError};
use mongodb::bson::doc;

use crate::schema::{self, LIBRARY_VERSION};
use crate::{FOREIGN_BACKFILL_INTERVAL, MongoStore};

impl MongoStore {
    /// The number of `musics` documents from the collection's statistics (`$collStats`:
    /// metadata on MongoDB and on FerretDB, where the `count` command reads every document),
    /// else from the `count` command.
    pub(crate) async fn musics_count(&self) -> Result<u64> {
        let stats = self
            .find_all(
                self.inner
                    .musics
                    .aggregate(vec![doc! { "$collStats": { "count": {} } }]),
            )
            .await;
        match stats {
            Ok(docs) => Ok(docs
                .iter()
                .filter_map(|d| schema::integer(d.get("count")))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .sum()),
            Err(StoreError::Unavailable(why)) => Err(StoreError::Unavailable(why)),
            Err(_) => {
                self.timed(self.inner.musics.estimated_document_count())
                    .await
            }
        }
    }

    /// `(counter, estimated document count)` of the library; see [`Catalog::library_version`](legato_store::Catalog::library_version).
    pub(crate) async fn library_state(&self) -> Result<(i64, u64)> {
        let counter = self.timed(self.inner.meta.find_one(doc! { "_id": LIBRARY_VERSION }));
        let count = self.musics_count();
        let (counter, count) = tokio::try_join!(counter, count)?;
        let counter = counter
            .and_then(|doc| schema::integer(doc.get("version")))
            .unwrap_or(0);
        // The count moving while the counter stands still is the seed's doing, or one of our
        // writes between its document and its count (the counter moves just after): only
        // when a second look finds the same pair is it the seed's.
        let foreign = {
            let mut seen = self
                .inner
                .last_library
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = (counter, count);
            match seen.confirmed {
                Some((c, n)) if c == counter && n != count => {
                    if seen.suspect == Some(now) {
                        seen.confirmed = Some(now);
                        seen.suspect = None;
                        true
                    } else {
                        seen.suspect = Some(now);
                        false
                    }
                }
                _ => {
                    seen.confirmed = Some(now);
                    seen.suspect = None;
                    false
                }
            }
        };
        if foreign {
            self.backfill_in_background();
        }
        Ok((counter, count))
    }

    /// Runs [`backfill_keys`](Self::backfill_keys) in the background, unless it ran less
    /// than [`FOREIGN_BACKFILL_INTERVAL`] ago.
    pub(crate) fn backfill_in_background(&self) {
        {
            let mut last = self
                .inner
                .last_backfill
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < FOREIGN_BACKFILL_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.backfill_keys().await {
                tracing::warn!(error = %e, "could not write the keys of tracks another program added");
            }
        });
    }

    /// Counts a change of `musics` in the library's version (see [`Catalog::library_version`]),
    /// after the change. A failure is only logged: the change is made and is reported as made;
    /// a cache misses it until the next change.
    pub(crate) async fn bump_library(&self) {
        let bumped = self
            .timed(
                self.inner
                    .meta
                    .update_one(
                        doc! { "_id": LIBRARY_VERSION },
                        doc! { "$inc": { "version": 1_i64 } },
                    )
                    .upsert(true),
            )
            .await;
        if let Err(e) = bumped {
            tracing::warn!(error = %e, "could not count a change of the library");
        }
    }
}

/// What [`MongoStore::library_state`] saw last: the pair it took as settled, and a pair whose
/// count moved without the counter, waiting for a second look.
#[derive(Default)]
pub(crate) struct LibraryLook {
    confirmed: Option<(i64, u64)>,
    suspect: Option<(i64, u64)>,
}

/// FNV-1a, 64 bits: a stable mix (the same in every process and build), for
/// [`Catalog::library_version`](legato_store::Catalog::library_version).
pub(crate) struct Fnv1a(pub(crate) u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
