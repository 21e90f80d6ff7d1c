//! sea-orm entity of the `autodevops_jobs` table (see the migrations crate).

use sea_orm::entity::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "autodevops_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub queue: String,
    pub tenant: Option<String>,
    pub repo: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub path: Option<String>,
    pub git_ref: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub result: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub enqueued_at: Option<DateTimeUtc>,
    pub run_after: Option<DateTimeUtc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTimeUtc>,
    /// Failed attempts, oldest first: `[{attempt, worker, at, error}]`.
    pub history: Option<Json>,
    /// Set while the job is active; a second submission with the same key gets this job.
    pub dedup_key: Option<String>,
    /// GitHub jobs: the App installation, commit, pull request and what triggered the job.
    pub installation_id: Option<i64>,
    pub head_sha: Option<String>,
    pub pr_number: Option<i64>,
    pub trigger: Option<Json>,
    pub delivery_id: Option<String>,
    /// The check run this job owns, once created (a rerun after a crash updates it).
    pub check_run_id: Option<i64>,
    /// A newer job with this key supersedes this one while it is active (cancelled).
    pub coalesce_key: Option<String>,
    pub superseded_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
