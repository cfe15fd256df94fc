//! A process killed between the two writes of a claim (the claim's record, then the job)
//! does not strand the job: once the record is a lease old, the next claim passes it.

use std::time::{SystemTime, UNIX_EPOCH};

use legato_store::conformance::sample_track;
use legato_store::{Catalog, Chunk, ChunkSource};
use legato_store_mongo::{MongoOptions, MongoStore};
use mongodb::bson::doc;

use crate::util::{plain, plain_collection, test_uri, unique_database};

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_claim_whose_claimer_died_before_taking_the_job_is_passed_after_a_lease() {
    let uri = test_uri();
    let database = unique_database("claims");
    let store = MongoStore::connect(
        &uri,
        MongoOptions {
            database: Some(database.clone()),
            ..MongoOptions::default()
        },
    )
    .await
    .unwrap();
    let track = sample_track("Stranded", "Nobody");
    let id = track.id;
    let source: ChunkSource = Box::new(
        vec![Ok(Chunk::new(
            String::from("source/0000"),
            bytes::Bytes::from_static(b"x"),
        ))]
        .into_iter(),
    );
    store.accept_track(track, source).await.unwrap();
    let queued = store.get_job(&id).await.unwrap().unwrap();
    let next = queued.claims + 1;

    // The dead process recorded claim `next` and was killed before it updated the job.
    let log = plain_collection(&plain(&uri, &database).await, "job_log");
    let lease_ms = 3_000;
    let record = |at: i64| {
        doc! {
            "_id": format!("{id}/claim/{next}"), "track": id.to_string(),
            "claim": i64::try_from(next).unwrap(), "owner": "dead", "at": at,
        }
    };
    log.insert_one(record(now_ms())).await.unwrap();
    // While the record is younger than a lease, its claimer may still be alive: left to it.
    let now = now_ms();
    assert!(
        store
            .claim_job("alive", now, now + lease_ms)
            .await
            .unwrap()
            .is_none()
    );

    // A lease later, the next claim passes it and takes the job.
    log.delete_one(doc! { "_id": format!("{id}/claim/{next}") })
        .await
        .unwrap();
    log.insert_one(record(now_ms() - 2 * lease_ms))
        .await
        .unwrap();
    let now = now_ms();
    let job = store
        .claim_job("alive", now, now + lease_ms)
        .await
        .unwrap()
        .expect("the stranded job is claimed");
    assert_eq!(job.track_id, id);
    assert_eq!(job.claims, next + 1);
    assert_eq!(job.owner.as_deref(), Some("alive"));
    let stored = store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(stored.claims, next + 1);
}
