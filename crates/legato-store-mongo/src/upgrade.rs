//! The layout upgrade: the one place that reads the whole library, once per layout version
//! (see docs/mongodb.md, "Upgrading the layout"), and the key backfill it shares with the
//! seed-watch in `library_state`.

use mongodb::bson::{Bson, doc};

use legato_store::Result;

use crate::{ID_BATCH, MongoStore, schema};

impl MongoStore {
    /// Brings the database's layout up to [`schema::CURRENT_SCHEMA`], once: the one place
    /// that reads the whole library, at the first start of a new version (any process may
    /// run it; every step is idempotent). Writes the search keys of documents without them
    /// ([`backfill_keys`](Self::backfill_keys)), then moves waveforms out of `musics` into
    /// `track_peaks`.
    pub async fn upgrade(&self) -> Result<()> {
        let at = self
            .timed(self.inner.meta.find_one(doc! { "_id": schema::SCHEMA }))
            .await?
            .and_then(|doc| schema::integer(doc.get("version")))
            .unwrap_or(0);
        if at >= schema::CURRENT_SCHEMA {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let keyed = self.backfill_keys().await?;
        let moved = self.move_peaks().await?;
        self.queue_retirements().await?;
        self.timed(
            self.inner
                .meta
                .update_one(
                    doc! { "_id": schema::SCHEMA },
                    doc! { "$max": { "version": schema::CURRENT_SCHEMA } },
                )
                .upsert(true),
        )
        .await?;
        tracing::info!(
            from = at,
            to = schema::CURRENT_SCHEMA,
            keyed,
            moved,
            ms = started.elapsed().as_millis() as u64,
            "MongoDB layout upgraded"
        );
        Ok(())
    }

    /// Queues, in `retirements`, the retirements an older version left pending in `musics`.
    pub(crate) async fn queue_retirements(&self) -> Result<()> {
        let pending = self
            .find_all(
                self.inner
                    .musics
                    .find(doc! { "retire_after": { "$gte": 0_i64 } })
                    .projection(doc! { "_id": 1, "generation": 1, "retire_after": 1 }),
            )
            .await?;
        for doc in pending {
            let (Ok(oid), Some(after)) = (
                doc.get_object_id("_id"),
                schema::integer(doc.get("retire_after")),
            ) else {
                continue;
            };
            let generation = schema::integer(doc.get("generation")).unwrap_or(0);
            self.queue_retirement(&schema::track_id(&oid), after, generation)
                .await?;
        }
        Ok(())
    }

    /// Moves the waveforms an older version kept in `musics` (`analysis.peaks`) to
    /// `track_peaks`; returns how many.
    pub(crate) async fn move_peaks(&self) -> Result<u64> {
        let inline = doc! { "analysis.peaks": { "$exists": true } };
        let mut moved = 0;
        loop {
            let docs = self
                .find_all(
                    self.inner
                        .musics
                        .find(inline.clone())
                        .projection(doc! { "_id": 1, "analysis.peaks": 1 })
                        .limit(ID_BATCH as i64),
                )
                .await?;
            for doc in &docs {
                let Ok(oid) = doc.get_object_id("_id") else {
                    continue;
                };
                let peaks = doc
                    .get_document("analysis")
                    .ok()
                    .and_then(|a| schema::peaks_from(a.get("peaks")))
                    .unwrap_or_default();
                if !peaks.is_empty() {
                    self.timed(
                        self.inner
                            .peaks
                            .replace_one(doc! { "_id": oid }, schema::peaks_doc(oid, &peaks))
                            .upsert(true),
                    )
                    .await?;
                }
                self.timed(self.inner.musics.update_one(
                    doc! { "_id": oid },
                    doc! { "$unset": { "analysis.peaks": "" } },
                ))
                .await?;
                moved += 1;
            }
            if docs.len() < ID_BATCH {
                return Ok(moved);
            }
        }
    }

    /// Writes the search and sort keys of documents that lack them (written by the seed, or
    /// before the keys existed); returns how many. Run by [`upgrade`](Self::upgrade), and
    /// when [`Catalog::library_version`](legato_store::Catalog::library_version) sees the seed insert a track (at most once per
    /// [`FOREIGN_BACKFILL_INTERVAL`]); on MongoDB one indexed query when there is nothing to
    /// do.
    pub async fn backfill_keys(&self) -> Result<u64> {
        let missing = doc! { "name_key": null };
        let mut done = 0;
        loop {
            let docs = self
                .find_all(
                    self.inner
                        .musics
                        .find(missing.clone())
                        .projection(doc! { "_id": 1, "name": 1, "author": 1 })
                        .limit(ID_BATCH as i64),
                )
                .await?;
            if docs.is_empty() {
                return Ok(done);
            }
            for doc in &docs {
                let Some(id) = doc.get("_id") else { continue };
                let text = |field| match doc.get(field) {
                    Some(Bson::String(s)) => s.as_str(),
                    _ => "",
                };
                let result = self
                    .timed(self.inner.musics.update_one(
                        doc! { "_id": id.clone(), "name_key": null },
                        doc! { "$set": schema::key_fields(text("name"), text("author")) },
                    ))
                    .await?;
                done += result.modified_count;
            }
            if docs.len() < ID_BATCH {
                if done > 0 {
                    tracing::info!(
                        tracks = done,
                        "wrote the search keys of tracks that had none"
                    );
                }
                return Ok(done);
            }
        }
    }
}
