//! The SQL of lists and searches: FTS5 word prefixes, the order's index, the filters.

use legato_store::{ListQuery, SortKey, SortOrder, keys};

use crate::rows::TRACK_COLUMNS;

/// The oldest track whose source has a given SHA-256, through `tracks_by_source_sha256`
/// (the expression and the partial index's condition are the index's own).
/// A failed track of the file comes after one that is not (an upload after a failure is a
/// new track); sorting the few tracks of one file costs nothing.
pub(crate) const FIND_BY_SOURCE_SHA256: &str = "WHERE source IS NOT NULL \
     AND json_extract(source, '$.sha256') = ?1 ORDER BY status = 'failed', created_at, id LIMIT 1";

/// Tracks left `processing` by a server that stopped, without a durable job to finish them
/// (uploads made before version 3).
pub(crate) const FAIL_STALE_PROCESSING: &str = "UPDATE tracks SET status = 'failed', \
     error = 'processing was interrupted (the server stopped); upload the file again' \
     WHERE status = 'processing' AND created_at < ?1 \
     AND id NOT IN (SELECT track_id FROM jobs)";

/// An FTS5 query for the words of a search: each a quoted prefix (so nothing in it is read as
/// an operator), all required. `None` when the search has no words: it matches nothing.
pub(crate) fn fts_query(search: &str) -> Option<String> {
    let words = keys::query_words(search);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The pieces of SQL a list query is made of.
pub(crate) struct ListSql {
    /// `SELECT … FROM …`, the track columns (and the waveform when asked).
    pub(crate) select: String,
    /// `WHERE` filter on `tracks` (empty for none), reading the FTS query as `?1`.
    pub(crate) filter: &'static str,
    /// `ORDER BY …`, total thanks to the id.
    pub(crate) order: String,
    /// The FTS query, when searching.
    pub(crate) fts: Option<String>,
    /// The index that holds the order (its entries carry the rowid).
    pub(crate) index: &'static str,
}

/// From this many matches on, a search page is found by walking the order's index and keeping
/// the rows that match: with a match in every few entries, the page is reached after a few
/// hundred entries, where sorting every match would first read each matching row (10,000 rows
/// of a 100,000-track library took 20 ms). Fewer matches are cheaper read and sorted.
pub(crate) const WALK_INDEX_FROM_MATCHES: i64 = 2000;

impl ListSql {
    /// `None` when the search can match nothing.
    pub(crate) fn new(query: &ListQuery) -> Option<Self> {
        let fts = match query.search.as_deref() {
            Some(search) => Some(fts_query(search)?),
            None => None,
        };
        let direction = match query.order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        let (column, index) = match query.sort {
            SortKey::CreatedAt => ("created_at", "tracks_by_created_at"),
            SortKey::Name => ("name_key", "tracks_by_name"),
            SortKey::Author => ("author_key", "tracks_by_author"),
            SortKey::Duration => ("duration", "tracks_by_duration"),
        };
        let select = if query.peaks {
            format!(
                "SELECT {TRACK_COLUMNS}, peaks FROM tracks LEFT JOIN track_peaks ON track_id = id"
            )
        } else {
            format!("SELECT {TRACK_COLUMNS} FROM tracks")
        };
        Some(Self {
            select,
            filter: if fts.is_some() {
                "WHERE tracks.rowid IN (SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH ?1)"
            } else {
                "WHERE ?1 IS NULL"
            },
            order: format!("ORDER BY {column} {direction}, id {direction}"),
            fts,
            index,
        })
    }
}
