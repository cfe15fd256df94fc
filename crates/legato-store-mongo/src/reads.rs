//! Reading tracks and chunks: list filters and plans, chunk bytes by their predictable `_id`,
//! documents to tracks (the seed's too), waveforms attached when asked.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};

use legato_store::{
    ListQuery, Result, SortKey, SortOrder, StoreError, Track, TrackId, TrackStatus, keys,
};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};

use crate::schema::{self, SEED_PLAYLIST};
use crate::{
    FEW_MATCHES, MongoStore, SORT_FEW_COMMENT, SearchPlan, WALK_ORDER_COMMENT, WORDS_INDEX,
};

impl MongoStore {
    /// The filter of a list query; `None` when the search can match nothing.
    pub(crate) fn list_filter(query: &ListQuery) -> Option<Document> {
        let Some(search) = query.search.as_deref() else {
            return Some(doc! {});
        };
        let words = keys::query_words(search);
        if words.is_empty() {
            return None;
        }
        let all: Vec<Document> = words
            .iter()
            .map(|w| doc! { "words": { "$regex": format!("^{}", schema::literal_regex(w)) } })
            .collect();
        Some(doc! { "$and": all })
    }

    /// A search's matches in order when there are at most [`FEW_MATCHES`] (read through
    /// the `words` index, sorted in memory: one query answers both the page and the count);
    /// `None` when there are more, which are then read by walking the order's index and
    /// checking each track's words (dense matches come soon), and counted in `words_id`.
    pub(crate) async fn few_matches(
        &self,
        filter: &Document,
        query: &ListQuery,
    ) -> Result<Option<Vec<Document>>> {
        let from_start = ListQuery {
            offset: 0,
            ..query.clone()
        };
        let docs = self
            .find_all(
                self.list_find(filter.clone(), &from_start, Some(SearchPlan::SortFew), None)
                    .limit(i64::try_from(FEW_MATCHES + 1).unwrap_or(i64::MAX)),
            )
            .await?;
        Ok((docs.len() as u64 <= FEW_MATCHES).then_some(docs))
    }

    /// The `find` of a list: `filter`, in the query's order, from its offset, or — `after` a
    /// remembered page's last track — from there with no skip (keyset paging).
    pub(crate) fn list_find(
        &self,
        filter: Document,
        query: &ListQuery,
        plan: Option<SearchPlan>,
        after: Option<Document>,
    ) -> mongodb::action::Find<'_, Document> {
        let (key, order_index, direction) = sort_of(query);
        // A document an older version wrote may still hold its waveform (until the upgrade
        // moves it): never sent, whichever the list; `attach_peaks` adds them when asked.
        // The order's key stays: the page's last one is where the next page starts.
        let mut projection =
            doc! { "words": 0, "name_key": 0, "author_key": 0, "analysis.peaks": 0 };
        projection.remove(key);
        let (filter, skip) = match after {
            Some(after) if filter.is_empty() => (after, 0),
            Some(after) => (doc! { "$and": [filter, after] }, 0),
            None => (filter, query.offset.min(i64::MAX as u64)),
        };
        let find = self
            .inner
            .musics
            .find(filter)
            .sort(doc! { key: direction, "_id": direction })
            .skip(skip)
            .projection(projection);
        // The plan travels as the command's comment too, for the query-shape test.
        match plan {
            None => find,
            Some(SearchPlan::SortFew) => find
                .hint(mongodb::options::Hint::Name(WORDS_INDEX.to_owned()))
                .comment(Bson::String(SORT_FEW_COMMENT.to_owned())),
            Some(SearchPlan::WalkOrder) => find
                .hint(mongodb::options::Hint::Name(order_index.to_owned()))
                .comment(Bson::String(WALK_ORDER_COMMENT.to_owned())),
        }
    }

    /// Where the page of `query` starts, when an earlier page of the same order ended at its
    /// offset and the library has not changed since (`library`, from
    /// [`library_state`](Self::library_state)): a filter on the order's key and `_id` after
    /// that page's last track, which the order's index answers without walking the pages
    /// before it (a skip of 99,950 reads 99,950 index entries).
    pub(crate) fn page_start(&self, query: &ListQuery, library: (i64, u64)) -> Option<Document> {
        if query.offset == 0 || query.search.is_some() {
            return None;
        }
        let cursors = self
            .inner
            .page_cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cursor = cursors.get(&PageAt::of(query, query.offset))?;
        if cursor.library != library {
            return None;
        }
        let (key, _, _) = sort_of(query);
        let (value, id) = (cursor.key.clone(), cursor.id);
        Some(match query.order {
            SortOrder::Asc => doc! { "$or": [
                { key: { "$gt": value.clone() } },
                { key: value, "_id": { "$gt": id } },
            ] },
            // Tracks without the key (the seed's have no `created_at`) come last in this order.
            SortOrder::Desc => doc! { "$or": [
                { key: { "$lt": value.clone() } },
                { key: value, "_id": { "$lt": id } },
                { key: Bson::Null },
            ] },
        })
    }

    /// Remembers where the page of `query` ended (its last document), for the next page.
    pub(crate) fn remember_page_end(
        &self,
        query: &ListQuery,
        library: (i64, u64),
        docs: &[Document],
    ) {
        if query.search.is_some() {
            return;
        }
        let (key, _, _) = sort_of(query);
        let Some(last) = docs.last() else { return };
        let (Some(value), Ok(id)) = (last.get(key), last.get_object_id("_id")) else {
            return;
        };
        if matches!(value, Bson::Null) {
            return;
        }
        let mut cursors = self
            .inner
            .page_cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cursors.len() >= PAGE_CURSORS {
            cursors.clear();
        }
        cursors.insert(
            PageAt::of(query, query.offset + docs.len() as u64),
            PageCursor {
                library,
                key: value.clone(),
                id,
            },
        );
    }

    /// The tracks of listed documents, with their waveforms when `peaks` asks for them.
    pub(crate) async fn listed(&self, docs: Vec<Document>, peaks: bool) -> Result<Vec<Track>> {
        let mut tracks = self.tracks_from_docs(docs).await?;
        if peaks {
            self.attach_peaks(&mut tracks).await?;
        }
        Ok(tracks)
    }

    /// Whether a ready track has this id (the seed's tracks have no status: ready). An `_id`
    /// lookup, the status checked here: the one filter every server answers from an index.
    pub(crate) async fn track_streamable(&self, oid: ObjectId) -> Result<bool> {
        let found = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": oid })
                    .projection(doc! { "_id": 1, "status": 1 }),
            )
            .await?;
        Ok(found.is_some_and(|doc| {
            !matches!(
                doc.get_str("status"),
                Ok(status) if status == TrackStatus::Processing.as_str()
                    || status == TrackStatus::Failed.as_str()
            )
        }))
    }

    /// A chunk's bytes: by its `_id` (derived from the track and the name, see
    /// [`schema::chunk_oid`]); a chunk the seed or an older version wrote has another `_id`
    /// and is found by `(music_id, chunk_name)` instead.
    pub(crate) async fn chunk_bytes(&self, id: &TrackId, name: &str) -> Result<Option<Bson>> {
        let by_id = self
            .timed(
                self.inner
                    .chunks
                    .find_one(doc! { "_id": schema::chunk_oid(id, name) })
                    .projection(
                        doc! { "_id": 0, "music_id": 1, "chunk_name": 1, "chunk_bytes": 1 },
                    ),
            )
            .await?;
        let id_hex = id.to_string();
        let found = match by_id {
            Some(doc)
                if doc.get_str("music_id") == Ok(id_hex.as_str())
                    && doc.get_str("chunk_name") == Ok(name) =>
            {
                Some(doc)
            }
            _ => {
                self.timed(
                    self.inner
                        .chunks
                        .find_one(doc! { "music_id": &id_hex, "chunk_name": name })
                        .projection(doc! { "_id": 0, "chunk_bytes": 1 }),
                )
                .await?
            }
        };
        Ok(found.and_then(|mut doc| doc.remove("chunk_bytes")))
    }

    pub(crate) async fn track_exists(&self, oid: ObjectId) -> Result<bool> {
        let found = self
            .timed(
                self.inner
                    .musics
                    .find_one(doc! { "_id": oid })
                    .projection(doc! { "_id": 1 }),
            )
            .await?;
        Ok(found.is_some())
    }

    /// Tracks for `musics` documents, reading the playlists of those that lack a duration
    /// or segment count (the seed's) in one query.
    pub(crate) async fn tracks_from_docs(&self, docs: Vec<Document>) -> Result<Vec<Track>> {
        let wanted: Vec<(String, String)> = docs
            .iter()
            .filter(|doc| schema::needs_playlist(doc))
            .filter_map(|doc| {
                let id = doc.get_object_id("_id").ok()?;
                let playlist = doc.get_str("playlist").unwrap_or(SEED_PLAYLIST);
                Some((id.to_hex(), playlist.to_owned()))
            })
            .collect();
        let mut playlists: HashMap<(String, String), Vec<u8>> = HashMap::new();
        if !wanted.is_empty() {
            let ids: Vec<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
            let names: HashSet<&str> = wanted.iter().map(|(_, name)| name.as_str()).collect();
            let names: Vec<&str> = names.into_iter().collect();
            let found: Vec<Document> = self
                .find_all(
                    self.inner
                        .chunks
                        .find(doc! {
                            "music_id": { "$in": ids },
                            "chunk_name": { "$in": names },
                        })
                        .projection(
                            doc! { "_id": 0, "music_id": 1, "chunk_name": 1, "chunk_bytes": 1 },
                        ),
                )
                .await?;
            for mut doc in found {
                let key = (
                    doc.get_str("music_id").unwrap_or_default().to_owned(),
                    doc.get_str("chunk_name").unwrap_or_default().to_owned(),
                );
                if let Some(Bson::Binary(binary)) = doc.remove("chunk_bytes") {
                    playlists.insert(key, binary.bytes);
                }
            }
        }
        Ok(docs
            .iter()
            .filter_map(|doc| {
                let key = (
                    doc.get_object_id("_id").ok()?.to_hex(),
                    doc.get_str("playlist").unwrap_or(SEED_PLAYLIST).to_owned(),
                );
                let track = schema::track_from_doc(doc, playlists.get(&key).map(Vec::as_slice));
                if track.is_none() {
                    tracing::warn!(id = ?doc.get("_id"), "skipping a musics document whose _id is not an ObjectId");
                }
                track
            })
            .collect())
    }

    pub(crate) async fn track_from_doc(&self, doc: Document) -> Result<Track> {
        let id = doc.get("_id").cloned();
        self.tracks_from_docs(vec![doc])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Backend(format!("musics document {id:?} is not a track")))
    }

    /// Fills in the waveform of each track that has an analysis, from [`PEAKS`] (one `_id`
    /// lookup per track, a few at a time: the only query shape FerretDB answers without
    /// reading every document).
    pub(crate) async fn attach_peaks(&self, tracks: &mut [Track]) -> Result<()> {
        let wanted: Vec<(usize, ObjectId)> = tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.analysis.as_ref().is_some_and(|a| a.peaks.is_empty()))
            .map(|(i, t)| (i, schema::object_id(&t.id)))
            .collect();
        let found: Vec<(usize, Option<Vec<f32>>)> = futures_util::stream::iter(wanted)
            .map(|(i, oid)| async move {
                let doc = self
                    .timed(self.inner.peaks.find_one(doc! { "_id": oid }))
                    .await?;
                Ok::<_, StoreError>((i, doc.and_then(|d| schema::peaks_from(d.get("peaks")))))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        for (i, peaks) in found {
            if let (Some(peaks), Some(analysis)) = (peaks, tracks[i].analysis.as_mut()) {
                analysis.peaks = peaks;
            }
        }
        Ok(())
    }
}

/// Page ends remembered at most; beyond, the oldest are forgotten all at once.
const PAGE_CURSORS: usize = 1024;

/// A list's order and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PageAt {
    sort: SortKey,
    order: SortOrder,
    offset: u64,
}

impl PageAt {
    fn of(query: &ListQuery, offset: u64) -> Self {
        Self {
            sort: query.sort,
            order: query.order,
            offset,
        }
    }
}

/// The last track of a page: its key in the order, its `_id`, and the library's state then.
#[derive(Debug, Clone)]
pub(crate) struct PageCursor {
    library: (i64, u64),
    key: Bson,
    id: ObjectId,
}

/// The order's field, its index, and the direction of a list.
fn sort_of(query: &ListQuery) -> (&'static str, &'static str, i32) {
    let direction = match query.order {
        SortOrder::Asc => 1,
        SortOrder::Desc => -1,
    };
    let (key, index) = match query.sort {
        SortKey::CreatedAt => ("created_at", "created_at_id"),
        SortKey::Name => ("name_key", "name_key_id"),
        SortKey::Author => ("author_key", "author_key_id"),
        SortKey::Duration => ("duration", "duration_id"),
    };
    (key, index, direction)
}
