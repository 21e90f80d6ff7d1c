//! The job repository. Every state change is a single conditional UPDATE, so concurrent
//! workers, relays and reapers can race without running a job twice.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionSession, TransactionTrait, TryInsertResult,
};

use super::job::{self, Column as C, Entity as Jobs, Model as Job};
use crate::domain::{GithubTarget, JobKind, JobSource, JobStatus};

use super::DbError;

/// A job to create.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: JobKind,
    pub queue: String,
    pub source: JobSource,
    pub tenant: Option<String>,
    pub max_attempts: u32,
    /// GitHub jobs: installation, commit, pull request, trigger.
    pub github: Option<GithubTarget>,
}

/// Filters of `GET /v1/jobs`.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub tenant: Option<String>,
    pub status: Option<JobStatus>,
    pub kind: Option<JobKind>,
    pub repo: Option<String>,
    /// Only jobs older than this id (ids are UUIDv7: they sort by creation time).
    pub before_id: Option<String>,
    pub limit: u64,
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The result of [`insert`]: a new job, or the active one doing the same work.
#[derive(Clone, Debug)]
pub struct Inserted {
    pub job: Job,
    pub deduplicated: bool,
    /// Older active jobs this one superseded (now cancelled).
    pub superseded: Vec<String>,
}

/// The same work, for the same tenant: the same kind on the same source (for GitHub jobs, the
/// same commit — or the same pull request's head when the commit is not known yet).
fn dedup_key(new: &NewJob) -> String {
    let gh = new.github.as_ref();
    // A pull request's analysis reports on that pull request: the same commit on another one
    // (or pushed to a branch) is other work.
    let pr = gh.and_then(|g| g.pr_number).map(|n| format!("#{n}"));
    let at = match (gh.and_then(|g| g.head_sha.clone()), pr) {
        (Some(sha), pr) => Some(format!("{sha}{}", pr.unwrap_or_default())),
        (None, pr) => pr,
    };
    let source = match &new.source {
        JobSource::Repo { repo, git_ref } => format!(
            "repo:{}@{}",
            repo.as_str(),
            at.or_else(|| git_ref.clone()).unwrap_or_default()
        ),
        JobSource::Path { path } => format!("path:{path}"),
        JobSource::Installation => format!(
            "installation:{}",
            gh.map_or(String::new(), |g| g.installation_id.to_string())
        ),
    };
    format!("{}|{}|{source}", new.tenant.as_deref().unwrap_or(""), new.kind.as_str())
}

/// Analyses that a newer one makes pointless: the same pull request, or the same branch for
/// pushes. Ten pushes in a second leave one analysis, of the last commit.
fn coalesce_key(new: &NewJob) -> Option<String> {
    let gh = new.github.as_ref()?;
    let JobSource::Repo { repo, git_ref } = &new.source else {
        return None;
    };
    if new.kind != JobKind::Analysis {
        return None;
    }
    let on = match (gh.pr_number, git_ref) {
        (Some(n), _) => format!("pr:{n}"),
        (None, Some(r)) => format!("ref:{r}"),
        (None, None) => return None,
    };
    Some(format!(
        "{}|{}|{}|{on}",
        new.tenant.as_deref().unwrap_or(""),
        new.kind.as_str(),
        repo.as_str()
    ))
}

/// The predicate of the partial indexes `idx_jobs_dedup_active` and `idx_jobs_coalesce_active`
/// (migrations), as literal SQL. With the statuses as bound parameters, Postgres's generic plan
/// (from a statement's sixth execution on) and SQLite cannot use those indexes, and every
/// insert scanned all active jobs: the cost grew with the backlog.
const ACTIVE_INDEX_PREDICATE: &str = "status IN ('queued', 'retrying', 'running')";

fn active() -> Expr {
    Expr::cust(ACTIVE_INDEX_PREDICATE)
}

/// Creates a job, unless the same work is already queued or running: then that job is returned
/// (a local path stops counting as "the same" once its analysis has started, since the tree
/// may have changed since). Concurrent duplicates are settled by a unique index. A new job
/// with a coalescing key cancels the older active jobs of that key (see [`coalesce_key`]).
///
/// Runs in its own transaction (a savepoint inside a caller's); see [`insert_in`].
pub async fn insert<D: ConnectionTrait + TransactionTrait>(db: &D, new: NewJob) -> Result<Inserted, DbError> {
    let txn = db.begin().await?;
    let inserted = insert_in(&txn, new, false).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// [`insert`] inside the caller's transaction, in two statements for a new job: an
/// `INSERT … ON CONFLICT DO NOTHING` on the active-dedup index (a lost race waits for the other
/// writer and then finds its job; no error, so no savepoint) and one `UPDATE … RETURNING` that
/// supersedes older jobs. `claim_push` stores a new job as already handed to its queue
/// (`enqueued_at` set): the caller pushes it at once with [`crate::relay::push_claimed`], and
/// if it never does, the relay re-pushes it after `REPUSH_AFTER_SECS`.
pub async fn insert_in(db: &impl ConnectionTrait, new: NewJob, claim_push: bool) -> Result<Inserted, DbError> {
    insert_in_as(db, new, claim_push, new_id()).await
}

/// [`insert_in`] with the id a new row gets (a deduplicated insert returns the active job,
/// whose id differs).
pub(crate) async fn insert_in_as(
    db: &impl ConnectionTrait,
    new: NewJob,
    claim_push: bool,
    id: String,
) -> Result<Inserted, DbError> {
    let key = dedup_key(&new);
    for _ in 0..3 {
        if let Some(job) = insert_row(db, new.clone(), &key, claim_push, &id).await? {
            let superseded = match &job.coalesce_key {
                Some(ck) => supersede(db, ck, &job.id).await?,
                None => Vec::new(),
            };
            return Ok(Inserted {
                job,
                deduplicated: false,
                superseded,
            });
        }
        if let Some(job) = Jobs::find()
            .filter(C::DedupKey.eq(key.as_str()))
            .filter(active())
            .one(db)
            .await?
        {
            return Ok(Inserted {
                job,
                deduplicated: true,
                superseded: Vec::new(),
            });
        }
        // The active job finished between the two statements: try again.
    }
    Err(DbError::Query(sea_orm::DbErr::Custom(format!(
        "job key {key:?} kept changing state"
    ))))
}

/// Cancels the active jobs of `coalesce_key` older than `newer` (UUIDv7 ids sort by creation,
/// so two racing inserts never cancel each other). A running one notices at its next lease
/// renewal. Returns the ids cancelled.
async fn supersede(db: &impl ConnectionTrait, coalesce_key: &str, newer: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    let now = Utc::now();
    let cancelled = Jobs::update_many()
        .col_expr(C::Status, Expr::value(JobStatus::Cancelled.as_str()))
        .col_expr(C::SupersededBy, Expr::value(newer))
        .col_expr(C::Error, Expr::value(format!("superseded by job {newer}")))
        .col_expr(C::FinishedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::CoalesceKey.eq(coalesce_key))
        .filter(active())
        .filter(C::Id.lt(newer))
        .exec_with_returning(db)
        .await?;
    let mut ids: Vec<String> = cancelled.into_iter().map(|j| j.id).collect();
    ids.sort();
    Ok(ids)
}

/// [`insert_in_as`] for many jobs at once: multi-row `INSERT … ON CONFLICT DO NOTHING`s, a
/// `SELECT` of the active jobs that the skipped rows duplicate (an earlier row of the same
/// batch included), and per coalescing key one `UPDATE` in which the key's newest new job
/// supersedes the older active jobs of its key. The outcome
/// is that of inserting them one after the other, except that an older job superseded within
/// the batch names the batch's newest job of its key. Results are in input order. A duplicated
/// active job that finished between the statements is an error: the caller records the batch
/// one by one instead.
pub(crate) async fn insert_many_as(
    db: &impl ConnectionTrait,
    items: Vec<(NewJob, String)>,
    claim_push: bool,
) -> Result<Vec<Inserted>, DbError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = items.iter().map(|(new, _)| dedup_key(new)).collect();
    let ids: Vec<String> = items.iter().map(|(_, id)| id.clone()).collect();
    let rows: Vec<job::ActiveModel> = items
        .into_iter()
        .zip(&keys)
        .map(|((new, id), key)| row(new, key, claim_push, &id))
        .collect();
    let mut created: HashMap<String, Job> = HashMap::with_capacity(rows.len());
    for chunk in super::pow2_chunks(rows) {
        for job in Jobs::insert_many(chunk)
            .on_conflict(on_active_key())
            .exec_with_returning(db)
            .await?
        {
            created.insert(job.id.clone(), job);
        }
    }
    let skipped: Vec<&str> = ids
        .iter()
        .zip(&keys)
        .filter(|(id, _)| !created.contains_key(*id))
        .map(|(_, key)| key.as_str())
        .collect();
    let mut active_by_key: HashMap<String, Job> = HashMap::new();
    for chunk in super::pow2_chunks(skipped) {
        for job in Jobs::find()
            .filter(C::DedupKey.is_in(chunk))
            .filter(active())
            .all(db)
            .await?
        {
            active_by_key.insert(job.dedup_key.clone().unwrap_or_default(), job);
        }
    }
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for job in created.values() {
        if let Some(ck) = &job.coalesce_key {
            let id = newest.entry(ck.as_str()).or_insert(job.id.as_str());
            *id = std::cmp::max(*id, job.id.as_str());
        }
    }
    // One statement per key: as a single set-based UPDATE (a join to a VALUES list, with or
    // without an `IN` list of the keys), Postgres's generic plan under a young table's
    // statistics scanned every active job on each batch (half the intake's throughput in the
    // webhook benchmark); one key's equality always uses the partial index.
    let mut superseded: HashMap<String, Vec<String>> = HashMap::new();
    for (ck, newer) in newest {
        superseded.insert(newer.to_owned(), supersede(db, ck, newer).await?);
    }
    ids.into_iter()
        .zip(keys)
        .map(|(id, key)| match created.remove(&id) {
            Some(job) => Ok(Inserted {
                job,
                deduplicated: false,
                superseded: superseded.remove(&id).unwrap_or_default(),
            }),
            None => match active_by_key.get(&key) {
                Some(job) => Ok(Inserted {
                    job: job.clone(),
                    deduplicated: true,
                    superseded: Vec::new(),
                }),
                None => Err(DbError::Query(sea_orm::DbErr::Custom(format!(
                    "job key {key:?} changed state during a batch insert"
                )))),
            },
        })
        .collect()
}

/// The row of a new job.
fn row(new: NewJob, key: &str, claim_push: bool, id: &str) -> job::ActiveModel {
    let now = Utc::now();
    let coalesce = coalesce_key(&new);
    let (repo, path, git_ref) = match new.source {
        JobSource::Repo { repo, git_ref } => (Some(repo.as_str().to_owned()), None, git_ref),
        JobSource::Path { path } => (None, Some(path), None),
        JobSource::Installation => (None, None, None),
    };
    let gh = new.github;
    job::ActiveModel {
        id: Set(id.to_owned()),
        kind: Set(new.kind.as_str().to_owned()),
        queue: Set(new.queue),
        tenant: Set(new.tenant),
        repo: Set(repo),
        path: Set(path),
        git_ref: Set(git_ref),
        status: Set(JobStatus::Queued.as_str().to_owned()),
        attempts: Set(0),
        max_attempts: Set(new.max_attempts as i32),
        error: Set(None),
        result: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        enqueued_at: Set(claim_push.then_some(now)),
        run_after: Set(None),
        locked_by: Set(None),
        locked_until: Set(None),
        history: Set(None),
        dedup_key: Set(Some(key.to_owned())),
        installation_id: Set(gh.as_ref().map(|g| g.installation_id)),
        head_sha: Set(gh.as_ref().and_then(|g| g.head_sha.clone())),
        pr_number: Set(gh.as_ref().and_then(|g| g.pr_number)),
        trigger: Set(gh.as_ref().map(|g| g.trigger.clone())),
        delivery_id: Set(gh.as_ref().and_then(|g| g.delivery_id.clone())),
        check_run_id: Set(None),
        coalesce_key: Set(coalesce),
        superseded_by: Set(None),
    }
}

/// `ON CONFLICT` on the active-dedup index. The index predicate is literal SQL, or Postgres's
/// generic plan finds no matching index.
fn on_active_key() -> OnConflict {
    OnConflict::column(C::DedupKey)
        .target_and_where(active())
        .do_nothing()
        .to_owned()
}

/// Inserts the row, or nothing (`None`) when an active job holds `key`.
async fn insert_row(
    db: &impl ConnectionTrait,
    new: NewJob,
    key: &str,
    claim_push: bool,
    id: &str,
) -> Result<Option<Job>, sea_orm::DbErr> {
    match Jobs::insert(row(new, key, claim_push, id))
        .on_conflict(on_active_key())
        .try_insert()
        .exec_with_returning(db)
        .await
    {
        Ok(TryInsertResult::Inserted(job)) => Ok(Some(job)),
        Ok(TryInsertResult::Conflicted | TryInsertResult::Empty) => Ok(None),
        // `RETURNING` gave no row: DO NOTHING took the conflict (how sea-orm reports it on SQLite).
        Err(sea_orm::DbErr::RecordNotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn get(db: &impl ConnectionTrait, id: &str, tenant: Option<&str>) -> Result<Option<Job>, DbError> {
    let mut q = Jobs::find_by_id(id.to_owned());
    if let Some(t) = tenant {
        q = q.filter(C::Tenant.eq(t));
    }
    Ok(q.one(db).await?)
}

pub async fn list(db: &impl ConnectionTrait, f: &JobFilter) -> Result<Vec<Job>, DbError> {
    let mut q = Jobs::find();
    if let Some(t) = &f.tenant {
        q = q.filter(C::Tenant.eq(t.as_str()));
    }
    if let Some(s) = f.status {
        q = q.filter(C::Status.eq(s.as_str()));
    }
    if let Some(k) = f.kind {
        q = q.filter(C::Kind.eq(k.as_str()));
    }
    if let Some(r) = &f.repo {
        q = q.filter(C::Repo.eq(r.as_str()));
    }
    if let Some(c) = &f.before_id {
        q = q.filter(C::Id.lt(c.as_str()));
    }
    Ok(q.order_by_desc(C::Id).limit(f.limit).all(db).await?)
}

/// Whether `tenant` has a job of `kind` created since `since` (periodic tasks run once per
/// period across all workers).
pub async fn created_since(
    db: &impl ConnectionTrait,
    tenant: &str,
    kind: JobKind,
    since: DateTime<Utc>,
) -> Result<bool, DbError> {
    Ok(Jobs::find()
        .filter(C::Tenant.eq(tenant))
        .filter(C::Kind.eq(kind.as_str()))
        .filter(C::CreatedAt.gt(since))
        .count(db)
        .await?
        > 0)
}

/// Count of jobs per status (for /v1/queues and gauges).
pub async fn count_by_status(db: &impl ConnectionTrait, kind: JobKind, status: JobStatus) -> Result<u64, DbError> {
    Ok(Jobs::find()
        .filter(C::Kind.eq(kind.as_str()))
        .filter(C::Status.eq(status.as_str()))
        .count(db)
        .await?)
}

/// Claims a job for `worker`: only a queued/retrying job that is due, or a running job whose
/// lease has expired (its worker died). Returns the claimed row, or `None` when another worker
/// has it or it is finished — the caller then drops the message.
pub async fn claim(
    db: &impl ConnectionTrait,
    id: &str,
    worker: &str,
    lease_until: DateTime<Utc>,
) -> Result<Option<Job>, DbError> {
    let now = Utc::now();
    let claimable = Condition::any()
        .add(
            Condition::all()
                .add(C::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Retrying.as_str()]))
                .add(Condition::any().add(C::RunAfter.is_null()).add(C::RunAfter.lte(now))),
        )
        .add(
            Condition::all()
                .add(C::Status.eq(JobStatus::Running.as_str()))
                .add(C::LockedUntil.lt(now)),
        );
    let res = Jobs::update_many()
        .col_expr(C::Status, Expr::value(JobStatus::Running.as_str()))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::StartedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .col_expr(C::LockedBy, Expr::value(worker))
        .col_expr(C::LockedUntil, Expr::value(lease_until))
        // A path's tree may change once its run has started: a new submission is new work.
        .col_expr(
            C::DedupKey,
            Expr::cust("CASE WHEN path IS NULL THEN dedup_key ELSE NULL END"),
        )
        .filter(C::Id.eq(id))
        .filter(claimable)
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Jobs::find_by_id(id.to_owned()).one(db).await?)
}

/// How a run ended, as far as the row is concerned.
#[derive(Clone, Debug)]
pub enum Outcome {
    Succeeded {
        result: serde_json::Value,
        history: serde_json::Value,
    },
    /// Retry at the given time (the relay enqueues it again when due).
    Retry {
        error: String,
        at: DateTime<Utc>,
        history: serde_json::Value,
    },
    Dead {
        error: String,
        history: serde_json::Value,
    },
    /// Run again at `at`, this attempt not counted (e.g. the tenant's budget resets then).
    Deferred {
        reason: String,
        at: DateTime<Utc>,
    },
}

/// Records the end of a run. Fenced by `locked_by`: a worker whose lease was taken over
/// cannot overwrite the newer run. Returns false when the fence did not match.
pub async fn finish(db: &impl ConnectionTrait, id: &str, worker: &str, outcome: Outcome) -> Result<bool, DbError> {
    let now = Utc::now();
    // `locked_by` stays: it records which worker ran the job last.
    let mut q = Jobs::update_many()
        .col_expr(C::UpdatedAt, Expr::value(now))
        .col_expr(C::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None));
    q = match outcome {
        Outcome::Succeeded { result, history } => q
            .col_expr(C::Status, Expr::value(JobStatus::Succeeded.as_str()))
            .col_expr(C::History, Expr::value(history))
            .col_expr(C::Result, Expr::value(result))
            .col_expr(C::Error, Expr::value(Option::<String>::None))
            .col_expr(C::FinishedAt, Expr::value(now)),
        Outcome::Retry { error, at, history } => q
            .col_expr(C::Status, Expr::value(JobStatus::Retrying.as_str()))
            .col_expr(C::Error, Expr::value(error))
            .col_expr(C::History, Expr::value(history))
            .col_expr(C::RunAfter, Expr::value(at))
            .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None)),
        Outcome::Deferred { reason, at } => q
            .col_expr(C::Status, Expr::value(JobStatus::Retrying.as_str()))
            .col_expr(C::Error, Expr::value(reason))
            .col_expr(C::Attempts, Expr::col(C::Attempts).sub(1))
            .col_expr(C::RunAfter, Expr::value(at))
            .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None)),
        Outcome::Dead { error, history } => q
            .col_expr(C::Status, Expr::value(JobStatus::Dead.as_str()))
            .col_expr(C::Error, Expr::value(error))
            .col_expr(C::History, Expr::value(history))
            .col_expr(C::FinishedAt, Expr::value(now)),
    };
    Ok(held_by(q, id, worker).exec(db).await?.rows_affected == 1)
}

/// Restricts an update to `id` while `worker` holds it (running under its lease).
fn held_by(q: sea_orm::UpdateMany<Jobs>, id: &str, worker: &str) -> sea_orm::UpdateMany<Jobs> {
    q.filter(C::Id.eq(id))
        .filter(C::LockedBy.eq(worker))
        .filter(C::Status.eq(JobStatus::Running.as_str()))
}

fn outbox_due(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(C::EnqueuedAt.is_null())
        .add(C::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Retrying.as_str()]))
        .add(Condition::any().add(C::RunAfter.is_null()).add(C::RunAfter.lte(now)))
}

/// Marks a job as handed to the queue, if nobody else did. True when this caller won.
pub async fn mark_enqueued(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let res = Jobs::update_many()
        .col_expr(C::EnqueuedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(outbox_due(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Undoes [`mark_enqueued`] after a failed push, so the relay tries again.
pub async fn unmark_enqueued(db: &impl ConnectionTrait, id: &str) -> Result<(), DbError> {
    Jobs::update_many()
        .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(C::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Jobs due to be pushed to their queue: never enqueued (the push after insert failed or the
/// process died) or back from a retry. `settle` skips rows touched in the last moments, whose
/// own writer is about to push them.
pub async fn outbox(db: &impl ConnectionTrait, settle: chrono::Duration, limit: u64) -> Result<Vec<Job>, DbError> {
    let now = Utc::now();
    Ok(Jobs::find()
        .filter(outbox_due(now))
        .filter(C::UpdatedAt.lte(now - settle))
        .order_by_asc(C::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Returns running jobs whose lease expired (their worker died) to the outbox.
pub async fn reap_expired_leases(db: &impl ConnectionTrait) -> Result<u64, DbError> {
    let now = Utc::now();
    let res = Jobs::update_many()
        .col_expr(C::Status, Expr::value(JobStatus::Retrying.as_str()))
        .col_expr(
            C::Error,
            // Names the attempt, so each lost attempt is told apart in the history (`||` is
            // string concatenation on both SQLite and Postgres).
            Expr::cust("'lease expired on attempt ' || attempts || ': the worker running it stopped responding'"),
        )
        .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::RunAfter, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Status.eq(JobStatus::Running.as_str()).into_condition())
        .filter(C::LockedUntil.lt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Hands every job still running under `worker` back to the outbox (graceful shutdown after
/// the grace period). The attempt is not counted against the job.
pub async fn release_worker(db: &impl ConnectionTrait, worker: &str) -> Result<u64, DbError> {
    release(db, worker, None).await
}

/// Hands one job `worker` holds back to the outbox: its run was abandoned (the worker's queue
/// consumer stopped under it), not failed.
pub async fn release_job(db: &impl ConnectionTrait, id: &str, worker: &str) -> Result<u64, DbError> {
    release(db, worker, Some(id)).await
}

async fn release(db: &impl ConnectionTrait, worker: &str, id: Option<&str>) -> Result<u64, DbError> {
    let now = Utc::now();
    let mut q = Jobs::update_many()
        .col_expr(C::Status, Expr::value(JobStatus::Queued.as_str()))
        .col_expr(C::Attempts, Expr::col(C::Attempts).sub(1))
        .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(C::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::UpdatedAt, Expr::value(now - chrono::Duration::seconds(60)))
        .filter(C::Status.eq(JobStatus::Running.as_str()))
        .filter(C::LockedBy.eq(worker));
    if let Some(id) = id {
        q = q.filter(C::Id.eq(id));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Extends the lease of a job `worker` is running. False when the lease was lost.
pub async fn renew_lease(
    db: &impl ConnectionTrait,
    id: &str,
    worker: &str,
    until: DateTime<Utc>,
) -> Result<bool, DbError> {
    let q = Jobs::update_many().col_expr(C::LockedUntil, Expr::value(until));
    Ok(held_by(q, id, worker).exec(db).await?.rows_affected == 1)
}

/// Records the check run a job created (so a rerun after a crash updates it instead of
/// creating a second one) and the commit it resolved. Fenced by the worker that ran it, but
/// not by status: a job superseded meanwhile still needs its check run known, to close it.
pub async fn set_github_progress(
    db: &impl ConnectionTrait,
    id: &str,
    worker: &str,
    head_sha: &str,
    check_run_id: Option<i64>,
) -> Result<bool, DbError> {
    let res = Jobs::update_many()
        .col_expr(C::HeadSha, Expr::value(head_sha))
        .col_expr(C::CheckRunId, Expr::value(check_run_id))
        .col_expr(C::UpdatedAt, Expr::value(Utc::now()))
        .filter(C::Id.eq(id))
        .filter(C::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Puts a dead job back on its queue: attempts reset, history kept. `None` when there is no
/// dead job with that id (for this tenant).
pub async fn replay_dead(db: &impl ConnectionTrait, id: &str, tenant: Option<&str>) -> Result<Option<Job>, DbError> {
    let now = Utc::now();
    let mut q = Jobs::update_many()
        .col_expr(C::Status, Expr::value(JobStatus::Queued.as_str()))
        .col_expr(C::Attempts, Expr::value(0))
        .col_expr(C::Result, Expr::value(Option::<serde_json::Value>::None))
        .col_expr(C::Error, Expr::value(Option::<String>::None))
        .col_expr(C::StartedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::EnqueuedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::RunAfter, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        // A replay is deliberate: it is never folded into another active job.
        .col_expr(C::DedupKey, Expr::value(Option::<String>::None))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::Status.eq(JobStatus::Dead.as_str()));
    if let Some(t) = tenant {
        q = q.filter(C::Tenant.eq(t));
    }
    if q.exec(db).await?.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Jobs::find_by_id(id.to_owned()).one(db).await?)
}

/// Deletes a dead job. True when there was one (for this tenant).
pub async fn purge_dead(db: &impl ConnectionTrait, id: &str, tenant: Option<&str>) -> Result<bool, DbError> {
    let mut q = Jobs::delete_many()
        .filter(C::Id.eq(id))
        .filter(C::Status.eq(JobStatus::Dead.as_str()));
    if let Some(t) = tenant {
        q = q.filter(C::Tenant.eq(t));
    }
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// Jobs pushed more than `older_than` ago that are still waiting to start.
pub async fn stale_enqueued(
    db: &impl ConnectionTrait,
    older_than: chrono::Duration,
    limit: u64,
) -> Result<Vec<Job>, DbError> {
    let now = Utc::now();
    Ok(Jobs::find()
        .filter(C::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Retrying.as_str()]))
        .filter(C::EnqueuedAt.lt(now - older_than))
        .order_by_asc(C::EnqueuedAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Records a re-push, so the job is not considered stale again for a while.
pub async fn touch_enqueued(db: &impl ConnectionTrait, id: &str) -> Result<(), DbError> {
    Jobs::update_many()
        .col_expr(C::EnqueuedAt, Expr::value(Utc::now()))
        .filter(C::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Depth of one queue, from the jobs table (the source of truth: it also counts jobs waiting
/// in the outbox while the queue backend is down).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct QueueDepth {
    /// Ready to run now (queued, or a retry that is due).
    pub pending: u64,
    pub running: u64,
    /// Retries waiting for their backoff to pass.
    pub scheduled: u64,
    pub dead: u64,
    /// Seconds since the longest-waiting pending job became pending (0 when none).
    pub oldest_pending_age_s: f64,
}

/// kind, status, ready (1/0), count, oldest `updated_at`.
type DepthRow = (String, String, i32, i64, Option<DateTime<Utc>>);

/// Depth of every queue in one grouped query.
pub async fn depth(db: &impl ConnectionTrait) -> Result<std::collections::BTreeMap<JobKind, QueueDepth>, DbError> {
    use sea_orm::sea_query::Func;
    let now = Utc::now();
    let due = Condition::any().add(C::RunAfter.is_null()).add(C::RunAfter.lte(now));
    // "ready": 1 when the row is runnable now, 0 when it waits for a backoff.
    let ready: Expr = Expr::case(due, 1).finally(0).into();
    let oldest: Expr = Func::min(Expr::col(C::UpdatedAt)).into();
    let rows: Vec<DepthRow> = Jobs::find()
        .select_only()
        .column(C::Kind)
        .column(C::Status)
        .column_as(ready, "ready")
        .column_as(Expr::col(C::Id).count(), "n")
        .column_as(oldest, "oldest")
        .filter(C::Status.is_in(["queued", "retrying", "running", "dead"]))
        .group_by(C::Kind)
        .group_by(C::Status)
        // By position: Postgres does not see `ready` (with its bound timestamp) in the select
        // list and in GROUP BY as the same expression. SQLite accepts positions too.
        .group_by(Expr::cust("3"))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: std::collections::BTreeMap<JobKind, QueueDepth> =
        JobKind::ALL.into_iter().map(|k| (k, QueueDepth::default())).collect();
    for (kind, status, ready, n, oldest) in rows {
        let Some(d) = kind.parse::<JobKind>().ok().and_then(|k| out.get_mut(&k)) else {
            continue;
        };
        let n = n as u64;
        match (status.as_str(), ready == 1) {
            ("queued", _) | ("retrying", true) => {
                d.pending += n;
                if let Some(t) = oldest {
                    let age = Ord::max((now - t).num_milliseconds(), 0) as f64 / 1000.0;
                    d.oldest_pending_age_s = f64::max(d.oldest_pending_age_s, age);
                }
            }
            ("retrying", false) => d.scheduled += n,
            ("running", _) => d.running += n,
            ("dead", _) => d.dead += n,
            _ => {}
        }
    }
    Ok(out)
}
