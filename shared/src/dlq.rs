//! The dead-letter queue: jobs whose status is `dead` (a permanent error, or out of attempts).
//! They keep their payload, error and attempt history until replayed or purged. Used by the
//! REST endpoints and by `autodevops dlq`.

use crate::db::job::Model as Job;
use crate::db::jobs::{self, JobFilter};
use crate::db::{Db, DbError};
use crate::domain::{JobKind, JobStatus};
use crate::queue::Queues;

/// Replays one dead job: back on its queue with attempts reset and history kept.
/// `None` when there is no dead job with that id (for this tenant).
pub async fn replay(db: &Db, queues: &Queues, id: &str, tenant: Option<&str>) -> Result<Option<Job>, DbError> {
    let Some(job) = jobs::replay_dead(&db.conn, id, tenant).await? else {
        return Ok(None);
    };
    if let Err(e) = crate::relay::enqueue(db, queues, &job).await {
        tracing::warn!(job_id = %job.id, error = %e, "queue unavailable; replayed job waits in the outbox");
    }
    tracing::info!(job_id = %job.id, kind = %job.kind, "dead job replayed");
    Ok(Some(job))
}

/// Dead jobs of one kind (or all), oldest last, up to `limit`.
pub async fn list(db: &Db, kind: Option<JobKind>, limit: u64) -> Result<Vec<Job>, DbError> {
    let filter = JobFilter {
        status: Some(JobStatus::Dead),
        kind,
        limit,
        ..JobFilter::default()
    };
    jobs::list(&db.conn, &filter).await
}

/// Every dead job's id of one kind (or all), page by page.
pub async fn all_ids(db: &Db, kind: Option<JobKind>) -> Result<Vec<String>, DbError> {
    let mut ids = Vec::new();
    let mut filter = JobFilter {
        status: Some(JobStatus::Dead),
        kind,
        limit: 500,
        ..JobFilter::default()
    };
    loop {
        let page = jobs::list(&db.conn, &filter).await?;
        let done = (page.len() as u64) < filter.limit;
        filter.before_id = page.last().map(|j| j.id.clone());
        ids.extend(page.into_iter().map(|j| j.id));
        if done {
            return Ok(ids);
        }
    }
}
