//! Every query the MongoDB store sends is index-shaped, checked on what it really sends.
//!
//! The driver's command monitoring records every command of the whole conformance story (and
//! of the calls it does not make: garbage collection, the start-up checks); each `find`,
//! `findAndModify`, `update`, `delete`, `count`, `distinct` and `aggregate` filter is checked
//! against the indexes the store declares (`legato_store_mongo::indexes::INDEXES`, and `_id`):
//! either an `_id` lookup, or its equality fields form the start of one index, followed by its
//! sort fields (the range field, if any, first among them). A query that is not fails the test
//! by name, unless it is one of the few named bulk operations below. The table of shapes and
//! the index each uses is docs/mongodb.md's: the test fails when the two differ.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use legato_store::conformance::blobs::every_blob_story;
use legato_store::conformance::every_story;
use legato_store::{Catalog, DynStore, ListQuery, SortKey, SortOrder};
use legato_store_mongo::indexes::INDEXES;
use legato_store_mongo::{MongoOptions, MongoStore, SORT_FEW_COMMENT, WALK_ORDER_COMMENT};
use mongodb::bson::{Bson, Document};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;

use crate::util::{test_uri, unique_database};

/// Queries allowed to read beyond an index, each an explicit bulk operation run once, with
/// why: `(collection, shape)`.
const BULK: &[(&str, &str, &str)] = &[(
    "musics",
    "find {analysis.peaks: other}",
    "the layout upgrade moves inline waveforms out, once",
)];

#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    equal: BTreeSet<String>,
    range: BTreeSet<String>,
    other: BTreeSet<String>,
    sort: Vec<String>,
}

impl Shape {
    fn describe(&self, command: &str) -> String {
        let mut fields: Vec<String> = Vec::new();
        for f in &self.equal {
            fields.push(format!("{f}: eq"));
        }
        for f in &self.range {
            fields.push(format!("{f}: range"));
        }
        for f in &self.other {
            fields.push(format!("{f}: other"));
        }
        let mut text = format!("{command} {{{}}}", fields.join(", "));
        if !self.sort.is_empty() {
            text.push_str(&format!(" sort {}", self.sort.join(",")));
        }
        text
    }

    /// The index that serves this shape on `collection`, if any.
    fn index(&self, collection: &str) -> Option<&'static str> {
        if self.equal.contains("_id") {
            return Some("_id (lookup)");
        }
        // Every field of a unique index given: one document at most, whatever else is asked.
        if let Some(spec) = INDEXES.iter().find(|spec| {
            spec.collection == collection
                && spec.unique
                && spec.keys.iter().all(|k| self.equal.contains(*k))
        }) {
            return Some(spec.name);
        }
        // No condition and no order: the whole collection.
        if self.equal.is_empty() && self.range.is_empty() && self.sort.is_empty() {
            return None;
        }
        if !self.other.is_empty() {
            return None;
        }
        let sort: Vec<&String> = self
            .sort
            .iter()
            .filter(|f| !self.equal.contains(*f))
            .collect();
        let tail: Vec<&String> = if sort.is_empty() {
            if self.range.len() > 1 {
                return None;
            }
            self.range.iter().collect()
        } else {
            if !self.range.iter().all(|r| r == sort[0]) {
                return None;
            }
            sort
        };
        let id_index: &[&str] = &["_id"];
        let candidates = INDEXES
            .iter()
            .filter(|spec| spec.collection == collection)
            .map(|spec| (spec.name, spec.keys))
            .chain(std::iter::once(("_id", id_index)));
        for (name, keys) in candidates {
            let n = self.equal.len();
            if keys.len() < n + tail.len() {
                continue;
            }
            let head: BTreeSet<String> = keys[..n].iter().map(|k| (*k).to_owned()).collect();
            if head == self.equal
                && keys[n..n + tail.len()]
                    .iter()
                    .zip(&tail)
                    .all(|(k, t)| k == t)
            {
                return Some(name);
            }
        }
        None
    }
}

/// The shapes of a filter (several for a top-level `$or`, one per branch).
fn shapes(filter: &Document, sort: &[String]) -> Vec<Shape> {
    let mut shape = Shape {
        sort: sort.to_vec(),
        ..Shape::default()
    };
    let mut branches = Vec::new();
    add_fields(filter, &mut shape, &mut branches);
    if branches.is_empty() {
        return vec![shape];
    }
    branches
        .into_iter()
        .flat_map(|branch| {
            shapes(&branch, sort).into_iter().map(|mut b| {
                b.equal.extend(shape.equal.iter().cloned());
                b.range.extend(shape.range.iter().cloned());
                b.other.extend(shape.other.iter().cloned());
                b
            })
        })
        .collect()
}

fn add_fields(filter: &Document, shape: &mut Shape, branches: &mut Vec<Document>) {
    for (key, value) in filter {
        match (key.as_str(), value) {
            ("$and", Bson::Array(parts)) => {
                for part in parts {
                    if let Bson::Document(part) = part {
                        add_fields(part, shape, branches);
                    }
                }
            }
            ("$or", Bson::Array(parts)) => {
                branches.extend(parts.iter().filter_map(|p| p.as_document().cloned()));
            }
            (other, _) if other.starts_with('$') => {
                shape.other.insert(other.to_owned());
            }
            (field, Bson::Document(ops)) if ops.keys().all(|k| k.starts_with('$')) => {
                for (op, operand) in ops {
                    let class = match op.as_str() {
                        "$eq" | "$in" => &mut shape.equal,
                        "$lt" | "$lte" | "$gt" | "$gte" => &mut shape.range,
                        "$regex" if matches!(operand, Bson::String(p) if p.starts_with('^')) => {
                            &mut shape.range
                        }
                        _ => &mut shape.other,
                    };
                    class.insert(field.to_owned());
                }
            }
            (field, _) => {
                shape.equal.insert(field.to_owned());
            }
        }
    }
    // A field with an equality is a point: its range conditions add nothing to the shape.
    let equal = shape.equal.clone();
    shape.range.retain(|f| !equal.contains(f));
}

fn sort_fields(sort: Option<&Bson>) -> Vec<String> {
    match sort {
        Some(Bson::Document(sort)) => sort.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// How a query asks to be read, from the comment the store puts on a search's `find`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// Through an index that serves the shape, filter and sort.
    Plain,
    /// Through the (hinted) index that serves the filter; the matches, at most the store's
    /// `FEW_MATCHES` (it counted them first), sorted in memory.
    SortFew,
    /// Walking the (hinted) index that serves the sort, the filter checked on each document:
    /// chosen when many match, so the page's matches come early.
    WalkOrder,
}

fn plan_of(command: &Document) -> Plan {
    match command.get_str("comment") {
        Ok(SORT_FEW_COMMENT) => Plan::SortFew,
        Ok(WALK_ORDER_COMMENT) => Plan::WalkOrder,
        _ => Plan::Plain,
    }
}

/// `(collection, command, filter, sort)` of each query a command makes.
fn queries(name: &str, command: &Document) -> Vec<(String, String, Document, Vec<String>)> {
    let collection = |key: &str| command.get_str(key).unwrap_or_default().to_owned();
    let doc = |key: &str| command.get_document(key).cloned().unwrap_or_default();
    match name {
        "find" => vec![(
            collection("find"),
            "find".into(),
            doc("filter"),
            sort_fields(command.get("sort")),
        )],
        "findAndModify" => vec![(
            collection("findAndModify"),
            "findAndModify".into(),
            doc("query"),
            sort_fields(command.get("sort")),
        )],
        "update" | "delete" => {
            let list = if name == "update" {
                "updates"
            } else {
                "deletes"
            };
            command
                .get_array(list)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Bson::as_document)
                        .map(|item| {
                            (
                                collection(name),
                                name.to_owned(),
                                item.get_document("q").cloned().unwrap_or_default(),
                                Vec::new(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        "count" => {
            let query = doc("query");
            if query.is_empty() {
                // The collection's count from its metadata: no document is read.
                return Vec::new();
            }
            vec![(collection("count"), "count".into(), query, Vec::new())]
        }
        "distinct" => vec![(
            collection("distinct"),
            "distinct".into(),
            doc("query"),
            Vec::new(),
        )],
        "aggregate" => {
            let stages: Vec<Document> = command
                .get_array("pipeline")
                .map(|s| s.iter().filter_map(Bson::as_document).cloned().collect())
                .unwrap_or_default();
            if stages
                .first()
                .is_some_and(|stage| stage.contains_key("$collStats"))
            {
                // The collection's statistics: no document is read.
                return Vec::new();
            }
            let filter = stages
                .iter()
                .find_map(|s| s.get_document("$match").ok().cloned())
                .unwrap_or_default();
            let sort = stages
                .iter()
                .find_map(|s| s.get("$sort"))
                .map(|s| sort_fields(Some(s)))
                .unwrap_or_default();
            vec![(collection("aggregate"), "aggregate".into(), filter, sort)]
        }
        _ => Vec::new(),
    }
}

/// Every order a list offers.
const SORTS: [SortKey; 4] = [
    SortKey::CreatedAt,
    SortKey::Name,
    SortKey::Author,
    SortKey::Duration,
];

type Recorded = Arc<Mutex<Vec<(String, Document)>>>;

async fn monitored(purpose: &str, recorded: &Recorded) -> MongoStore {
    let database = unique_database(purpose);
    let sink = recorded.clone();
    let ours = database.clone();
    let events = EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event
            && started.db == ours
        {
            sink.lock()
                .unwrap()
                .push((started.command_name, started.command));
        }
    });
    MongoStore::connect(
        &test_uri(),
        MongoOptions {
            database: Some(database),
            gc_on_start: false,
            command_events: Some(events),
            ..MongoOptions::default()
        },
    )
    .await
    .unwrap()
}

/// `find`s of `musics` that start after a remembered track (an `$or` on the order's key and
/// `_id`) and skip nothing.
fn keyset_finds(recorded: &Recorded) -> usize {
    recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, command)| {
            name == "find"
                && command.get_str("find") == Ok("musics")
                && command
                    .get_document("filter")
                    .is_ok_and(|f| f.contains_key("$or"))
                && command.get_i64("skip").unwrap_or(0) == 0
        })
        .count()
}

/// The docs/mongodb.md table between its markers.
fn documented() -> String {
    let doc = include_str!("../../../docs/mongodb.md");
    let start = doc
        .find("<!-- query-shapes:start -->")
        .expect("docs/mongodb.md has the query-shapes table");
    let end = doc.find("<!-- query-shapes:end -->").unwrap();
    doc[start + "<!-- query-shapes:start -->".len()..end]
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_is_index_shaped() {
    let recorded: Recorded = Arc::default();
    for (_, story) in every_story() {
        let store: DynStore =
            legato_store::Store::local(Arc::new(monitored("shape", &recorded).await));
        story(store).await;
    }
    for (_, story) in every_blob_story() {
        let store: DynStore =
            legato_store::Store::local(Arc::new(monitored("shape_blobs", &recorded).await));
        story(store.blobs().clone(), Some(store)).await;
    }
    // What the stories do not call: garbage collection, the sweeps, every list order.
    let store = monitored("shape_more", &recorded).await;
    store.collect_garbage().await.unwrap();
    store.sweep_orphan_chunks().await.unwrap();
    for sort in SORTS {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            for search in [None, Some("a b".to_owned())] {
                let query = ListQuery {
                    sort,
                    order,
                    search,
                    offset: 10,
                    ..ListQuery::default()
                };
                store.list_tracks(&query).await.unwrap();
            }
        }
    }
    store.fail_stale_processing(0).await.unwrap();
    // A claim whose claimer died between its two writes, passed by the next claim.
    let track = legato_store::conformance::sample_track("Stranded", "Nobody");
    let stranded = track.id;
    store
        .accept_track(track, Box::new(std::iter::empty()))
        .await
        .unwrap();
    crate::util::plain(&test_uri(), store.database())
        .await
        .collection::<Document>("job_log")
        .insert_one(mongodb::bson::doc! {
            "_id": format!("{stranded}/claim/1"), "track": stranded.to_string(),
            "claim": 1_i64, "owner": "dead", "at": 0_i64,
        })
        .await
        .unwrap();
    let claimed = store.claim_job("shape", 60_000, 63_000).await.unwrap();
    assert_eq!(claimed.map(|job| job.claims), Some(2));
    // A search that matches many tracks walks the order's index instead.
    let many: Vec<Document> = (0..1001)
        .map(|i| {
            mongodb::bson::doc! {
                "name": format!("many {i}"), "author": "x", "name_key": format!("many {i}"),
                "author_key": "x", "words": ["many", i.to_string()],
                "created_at": i64::from(i), "duration": 1.0,
            }
        })
        .collect();
    crate::util::plain(&test_uri(), store.database())
        .await
        .collection::<Document>("musics")
        .insert_many(many)
        .await
        .unwrap();
    for sort in [SortKey::CreatedAt, SortKey::Name] {
        let query = ListQuery {
            sort,
            search: Some("many".into()),
            limit: 5,
            ..ListQuery::default()
        };
        let page = store.list_tracks(&query).await.unwrap();
        assert_eq!((page.total, page.tracks.len()), (1001, 5));
    }

    // Paging on: the next page starts after the last one's last track (keyset, no skip),
    // and holds what a skip finds (a store with no page remembered skips).
    let skipping = MongoStore::connect(
        &test_uri(),
        MongoOptions {
            database: Some(store.database().to_owned()),
            gc_on_start: false,
            ..MongoOptions::default()
        },
    )
    .await
    .unwrap();
    let keyset_before = keyset_finds(&recorded);
    for sort in SORTS {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let page = |offset| ListQuery {
                sort,
                order,
                offset,
                limit: 7,
                ..ListQuery::default()
            };
            store.list_tracks(&page(0)).await.unwrap();
            let next = store.list_tracks(&page(7)).await.unwrap();
            let skipped = skipping.list_tracks(&page(7)).await.unwrap();
            let ids = |p: &legato_store::Page| p.tracks.iter().map(|t| t.id).collect::<Vec<_>>();
            assert_eq!(ids(&next), ids(&skipped), "{sort:?} {order:?}");
            assert_eq!(next.tracks.len(), 7);
        }
    }
    assert_eq!(keyset_finds(&recorded) - keyset_before, 8);

    let mut table: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut bad = Vec::new();
    for (name, command) in recorded.lock().unwrap().iter() {
        let plan = plan_of(command);
        for (collection, op, filter, sort) in queries(name, command) {
            for shape in shapes(&filter, &sort) {
                let described = shape.describe(&op);
                let served = match plan {
                    Plan::Plain => shape.index(&collection).map(str::to_owned),
                    Plan::SortFew => Shape {
                        sort: Vec::new(),
                        ..shape.clone()
                    }
                    .index(&collection)
                    .map(|index| format!("{index}, at most 1000 matches sorted in memory")),
                    Plan::WalkOrder => Shape {
                        sort: shape.sort.clone(),
                        ..Shape::default()
                    }
                    .index(&collection)
                    .map(|index| format!("{index} walked in order, the filter checked on each")),
                };
                match served {
                    Some(index) => {
                        table.insert((collection.clone(), described, index));
                    }
                    None => match BULK
                        .iter()
                        .find(|(c, s, _)| *c == collection && *s == described)
                    {
                        Some(_) => {
                            table.insert((
                                collection.clone(),
                                described,
                                "none: bulk, once".into(),
                            ));
                        }
                        None => bad.push(format!(
                            "{collection}: {described}   ({plan:?}, e.g. filter {filter})"
                        )),
                    },
                }
            }
        }
    }
    bad.sort();
    bad.dedup_by(|a, b| a.split("   (").next() == b.split("   (").next());
    assert!(
        bad.is_empty(),
        "queries no declared index serves:\n{}",
        bad.join("\n")
    );
    let mut rows = vec![
        "| collection | query | index |".to_owned(),
        "| --- | --- | --- |".to_owned(),
    ];
    for (collection, shape, index) in &table {
        rows.push(format!("| `{collection}` | `{shape}` | `{index}` |"));
    }
    let generated = rows.join("\n");
    assert_eq!(
        documented(),
        generated,
        "docs/mongodb.md's query table differs from what the store sends; the table now:\n{generated}"
    );
}
