//! The job queue's helpers: the next due job, and passing a claim whose claimer died.

use legato_store::{Job, JobKind, Result};
use mongodb::bson::{Bson, doc};

use crate::schema;
use crate::{MongoStore, claims_bson};

impl MongoStore {
    /// The job to claim next: uploads first (a job without a kind is an upload), and of
    /// each kind a lapsed lease before a queued job, then the earliest due, oldest first.
    /// Each query one range of the `state_kind_lease_created` index.
    /// Claim `claims` of `job` is recorded, but the job does not show it: its claimer is
    /// between its two writes (the record, then the job), or died there (killed at that
    /// instant). Once the record is a lease old, the job's count is moved past that claim,
    /// so that the next claim can be made; a live claimer has updated the job long before.
    pub(crate) async fn pass_a_dead_claim(
        &self,
        job: &Job,
        claims: u64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<()> {
        let id = job.track_id;
        let record = self
            .timed(
                self.inner
                    .job_log
                    .find_one(doc! { "_id": format!("{id}/claim/{claims}") }),
            )
            .await?;
        let claimed_at = record.and_then(|r| r.get_i64("at").ok());
        if claimed_at.is_some_and(|at| at.saturating_add(lease_ms) <= now_ms) {
            tracing::warn!(%id, claim = claims,
                "a claim of this job was recorded by a process that died before taking the job; passing it");
            self.timed(self.inner.jobs.update_one(
                doc! { "_id": id.to_string(), "claims": claims_bson(job.claims) },
                doc! { "$set": { "claims": claims_bson(claims), "updated_at": now_ms } },
            ))
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn next_due_job(&self, now_ms: i64) -> Result<Option<Job>> {
        let ingest = Bson::Array(vec![
            Bson::Null,
            Bson::String(JobKind::Ingest.as_str().to_owned()),
        ]);
        let reprocess = Bson::Array(vec![Bson::String(JobKind::Reprocess.as_str().to_owned())]);
        for kinds in [ingest, reprocess] {
            for (state, due) in [
                ("running", doc! { "$lt": now_ms }),
                ("queued", doc! { "$lte": now_ms }),
            ] {
                let found = self
                    .timed(
                        self.inner
                            .jobs
                            .find_one(doc! {
                                "state": state, "kind": { "$in": kinds.clone() }, "lease_until": due,
                            })
                            .sort(doc! { "lease_until": 1, "created_at": 1 }),
                    )
                    .await?;
                if let Some(job) = found.as_ref().and_then(schema::job_from_doc) {
                    return Ok(Some(job));
                }
            }
        }
        Ok(None)
    }
}
