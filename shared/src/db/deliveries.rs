//! The webhook delivery log.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
    TryInsertResult,
};

use super::DbError;
use super::delivery::{ActiveModel, Column, Entity as Deliveries, Model as Delivery};
use super::jobs::{self, Inserted, NewJob};

/// What a delivery was about, as recorded.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repo: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub job_id: Option<String>,
}

/// Records a delivery. `Ok(false)` when this delivery id was recorded before (a redelivery).
pub async fn record(db: &impl ConnectionTrait, d: NewDelivery) -> Result<bool, DbError> {
    match Deliveries::insert(active_model(d)).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn active_model(d: NewDelivery) -> ActiveModel {
    ActiveModel {
        id: Set(d.id),
        event: Set(d.event),
        action: Set(d.action),
        installation_id: Set(d.installation_id),
        repo: Set(d.repo),
        received_at: Set(Utc::now()),
        outcome: Set(d.outcome.to_owned()),
        reason: Set(d.reason),
        job_id: Set(d.job_id),
    }
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Delivery>, DbError> {
    Ok(Deliveries::find_by_id(id.to_owned()).one(db).await?)
}

/// Links a recorded delivery to the job it created.
pub async fn set_job(db: &impl ConnectionTrait, id: &str, job_id: &str) -> Result<(), DbError> {
    Deliveries::update_many()
        .col_expr(Column::JobId, Expr::value(job_id))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Which of `ids` were recorded (the redelivery task asks GitHub again for the others).
pub async fn known(db: &impl ConnectionTrait, ids: &[String]) -> Result<std::collections::HashSet<String>, DbError> {
    use sea_orm::QuerySelect;
    let rows: Vec<String> = Deliveries::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Id.is_in(ids.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// What recording one delivery gave: `None` for a delivery id seen before (nothing created),
/// else its jobs (new, or the active jobs doing the same work).
pub type Recorded = Option<Vec<Inserted>>;

/// Records a delivery and creates its jobs in one transaction (the outbox): both are stored,
/// or neither. `Ok(None)` for a delivery id seen before: no job is created a second time.
///
/// New jobs are stored claimed for their push (see [`jobs::insert_in`]): the caller pushes
/// each non-deduplicated one with [`crate::relay::push_claimed`] right after.
pub async fn record_with_jobs(
    db: &DatabaseConnection,
    d: NewDelivery,
    new_jobs: Vec<NewJob>,
) -> Result<Recorded, DbError> {
    let txn = db.begin().await?;
    let recorded = record_in(&txn, d, new_jobs).await?;
    txn.commit().await?;
    Ok(recorded)
}

/// Group commit: records several deliveries with their jobs in ONE transaction, in order (a
/// later delivery sees the earlier ones: the same id twice is a redelivery, a later push of the
/// same pull request supersedes the earlier one). One result per input, in input order; all
/// are committed when they return. When the shared transaction fails, each delivery is
/// recorded again in a transaction of its own, so one bad delivery cannot fail the others.
pub async fn record_batch(
    db: &DatabaseConnection,
    batch: Vec<(NewDelivery, Vec<NewJob>)>,
) -> Vec<Result<Recorded, DbError>> {
    if batch.len() == 1 {
        let (d, j) = batch.into_iter().next().expect("one element");
        return vec![record_with_jobs(db, d, j).await];
    }
    match record_all(db, batch.clone()).await {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(e) => {
            tracing::warn!(error = %e, deliveries = batch.len(), "group commit failed; recording each delivery alone");
            let mut out = Vec::with_capacity(batch.len());
            for (d, j) in batch {
                out.push(record_with_jobs(db, d, j).await);
            }
            out
        }
    }
}

/// [`record_batch`]'s shared transaction, all or nothing: every delivery is recorded, or none.
pub async fn record_all(
    db: &DatabaseConnection,
    batch: Vec<(NewDelivery, Vec<NewJob>)>,
) -> Result<Vec<Recorded>, DbError> {
    let txn = db.begin().await?;
    let out = record_many_in(&txn, batch).await?;
    txn.commit().await?;
    Ok(out)
}

/// [`record_in`] for a whole batch with multi-row statements: an insert of the
/// delivery rows (`ON CONFLICT (id) DO NOTHING`; the same id twice in the batch is a
/// redelivery), then [`jobs::insert_many_as`] for the jobs of the deliveries that are new, then
/// an `UPDATE` of a delivery's link only where its first job was deduplicated.
async fn record_many_in(
    db: &impl ConnectionTrait,
    batch: Vec<(NewDelivery, Vec<NewJob>)>,
) -> Result<Vec<Recorded>, DbError> {
    // Job ids are chosen now, so each delivery row is stored linked to its first job.
    let batch: Vec<(NewDelivery, Vec<(NewJob, String)>)> = batch
        .into_iter()
        .map(|(d, new_jobs)| {
            let new_jobs: Vec<_> = new_jobs.into_iter().map(|j| (j, jobs::new_id())).collect();
            let job_id = new_jobs.first().map(|(_, id)| id.clone()).or(d.job_id.clone());
            (NewDelivery { job_id, ..d }, new_jobs)
        })
        .collect();
    let mut seen = HashSet::new();
    let first_in_batch: Vec<bool> = batch.iter().map(|(d, _)| seen.insert(d.id.clone())).collect();
    let rows: Vec<ActiveModel> = batch
        .iter()
        .zip(&first_in_batch)
        .filter(|(_, first)| **first)
        .map(|((d, _), _)| active_model(d.clone()))
        .collect();
    let mut fresh = HashSet::with_capacity(rows.len());
    for chunk in super::pow2_chunks(rows) {
        fresh.extend(
            Deliveries::insert_many(chunk)
                .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
                .exec_with_returning_keys(db)
                .await?,
        );
    }

    // Per delivery: `None` for a redelivery, else (its id, the job it is linked to, its job count).
    let mut new_deliveries = Vec::with_capacity(batch.len());
    let mut items = Vec::new();
    for ((d, new_jobs), first) in batch.into_iter().zip(first_in_batch) {
        if first && fresh.contains(&d.id) {
            new_deliveries.push(Some((d.id, d.job_id, new_jobs.len())));
            items.extend(new_jobs);
        } else {
            new_deliveries.push(None);
        }
    }
    let mut inserted = jobs::insert_many_as(db, items, true).await?.into_iter();
    let mut out = Vec::with_capacity(new_deliveries.len());
    for delivery in new_deliveries {
        let Some((id, linked, n)) = delivery else {
            out.push(None);
            continue;
        };
        let its_jobs: Vec<Inserted> = inserted.by_ref().take(n).collect();
        if let (Some(first), Some(linked)) = (its_jobs.first(), linked)
            && first.job.id != linked
        {
            set_job(db, &id, &first.job.id).await?;
        }
        out.push(Some(its_jobs));
    }
    Ok(out)
}

/// Records one delivery inside the caller's transaction, without failing on a redelivery (so
/// no savepoint is needed): the delivery row goes first (`ON CONFLICT (id) DO NOTHING`; a
/// concurrent writer of the same id makes it wait for that writer's outcome), already linked
/// to the id its first job will get, then the jobs. Only when that first job turns out to be
/// deduplicated into an active one is the link updated.
async fn record_in(db: &impl ConnectionTrait, d: NewDelivery, new_jobs: Vec<NewJob>) -> Result<Recorded, DbError> {
    let first_id = (!new_jobs.is_empty()).then(jobs::new_id);
    let id = d.id.clone();
    let d = NewDelivery {
        job_id: first_id.clone().or(d.job_id),
        ..d
    };
    let fresh = Deliveries::insert(active_model(d))
        .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
        .try_insert()
        .exec_without_returning(db)
        .await?;
    if !matches!(fresh, TryInsertResult::Inserted(1)) {
        return Ok(None);
    }
    let mut inserted = Vec::with_capacity(new_jobs.len());
    let mut first_id = first_id;
    for new in new_jobs {
        let i = match first_id.take() {
            Some(as_id) => {
                let i = jobs::insert_in_as(db, new, true, as_id.clone()).await?;
                if i.job.id != as_id {
                    set_job(db, &id, &i.job.id).await?;
                }
                i
            }
            None => jobs::insert_in(db, new, true).await?,
        };
        inserted.push(i);
    }
    Ok(Some(inserted))
}
