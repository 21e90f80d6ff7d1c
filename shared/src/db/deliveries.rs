//! The webhook delivery log.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::DbError;
use super::delivery::{ActiveModel, Entity as Deliveries, Model as Delivery};

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
    let row = ActiveModel {
        id: Set(d.id),
        event: Set(d.event),
        action: Set(d.action),
        installation_id: Set(d.installation_id),
        repo: Set(d.repo),
        received_at: Set(Utc::now()),
        outcome: Set(d.outcome.to_owned()),
        reason: Set(d.reason),
        job_id: Set(d.job_id),
    };
    match Deliveries::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Delivery>, DbError> {
    Ok(Deliveries::find_by_id(id.to_owned()).one(db).await?)
}
