//! sea-orm entity of `model_calls` (see the migrations crate).

use sea_orm::entity::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "model_calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub job_id: String,
    pub tenant: Option<String>,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// From the model's prices in the routing policy.
    pub cost_usd: Option<f64>,
    pub latency_ms: i64,
    pub outcome: String,
    /// Position in the fallback chain (0 = first choice).
    pub step: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Records calls made for one job.
pub async fn record_all(
    db: &impl ConnectionTrait,
    job_id: &str,
    tenant: Option<&str>,
    calls: &[crate::models::CallRecord],
) -> Result<(), super::DbError> {
    if calls.is_empty() {
        return Ok(());
    }
    let rows = calls.iter().map(|c| ActiveModel {
        id: sea_orm::ActiveValue::Set(uuid::Uuid::now_v7().to_string()),
        job_id: sea_orm::ActiveValue::Set(job_id.to_owned()),
        tenant: sea_orm::ActiveValue::Set(tenant.map(str::to_owned)),
        provider: sea_orm::ActiveValue::Set(c.provider.clone()),
        model: sea_orm::ActiveValue::Set(c.model.clone()),
        input_tokens: sea_orm::ActiveValue::Set(c.input_tokens as i64),
        output_tokens: sea_orm::ActiveValue::Set(c.output_tokens as i64),
        cost_usd: sea_orm::ActiveValue::Set(c.cost_usd),
        latency_ms: sea_orm::ActiveValue::Set(c.latency_ms as i64),
        outcome: sea_orm::ActiveValue::Set(c.outcome.to_owned()),
        step: sea_orm::ActiveValue::Set(c.step as i32),
        created_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
    });
    Entity::insert_many(rows).exec(db).await?;
    Ok(())
}
