//! The webhook delivery log.

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

/// Records a delivery and creates its jobs in one transaction (the outbox): both are stored,
/// or neither. `Ok(None)` for a delivery id seen before: no job is created a second time.
///
/// New jobs are stored claimed for their push (see [`jobs::insert_in`]): the caller pushes
/// each non-deduplicated one with [`crate::relay::push_claimed`] right after.
/// The jobs go first so the delivery row is written once, already linked to its first job;
/// for a redelivery the delivery insert finds the id taken and the whole transaction is
/// rolled back.
pub async fn record_with_jobs(
    db: &DatabaseConnection,
    d: NewDelivery,
    new_jobs: Vec<NewJob>,
) -> Result<Option<Vec<Inserted>>, DbError> {
    let txn = db.begin().await?;
    let mut inserted = Vec::with_capacity(new_jobs.len());
    for new in new_jobs {
        inserted.push(jobs::insert_in(&txn, new, true).await?);
    }
    let d = NewDelivery {
        job_id: inserted.first().map(|i| i.job.id.clone()).or(d.job_id),
        ..d
    };
    let fresh = Deliveries::insert(active_model(d))
        .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
        .try_insert()
        .exec_without_returning(&txn)
        .await?;
    if !matches!(fresh, TryInsertResult::Inserted(1)) {
        txn.rollback().await?;
        return Ok(None);
    }
    txn.commit().await?;
    Ok(Some(inserted))
}
