//! sea-orm entity of `model_cache`, and its get/put (see [`crate::models::cache_key`] for the key).

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "model_cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub tenant: String,
    #[sea_orm(column_type = "Text")]
    pub source: String,
    pub content_hash: String,
    pub kind: String,
    pub policy_version: String,
    pub result: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The stored entry for `key`.
pub async fn get(db: &impl ConnectionTrait, key: &str) -> Result<Option<Model>, super::DbError> {
    Ok(Entity::find_by_id(key.to_owned()).one(db).await?)
}

/// Stores an entry; a concurrent writer of the same key wins (both hold the same answer).
pub async fn put(db: &impl ConnectionTrait, entry: Model) -> Result<(), super::DbError> {
    let res = Entity::insert(ActiveModel::from(entry))
        .on_conflict(OnConflict::column(Column::Key).do_nothing().to_owned())
        .exec(db)
        .await;
    match res {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
