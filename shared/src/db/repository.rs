//! sea-orm entity of `github_repositories`: the mirror of each installation's repositories.

use sea_orm::entity::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "github_repositories")]
pub struct Model {
    /// GitHub's repository id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub installation_id: i64,
    pub full_name: String,
    pub default_branch: String,
    pub archived: bool,
    pub private: bool,
    pub language: Option<String>,
    /// Set when the repository left the installation (or the installation was deleted).
    pub removed_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
