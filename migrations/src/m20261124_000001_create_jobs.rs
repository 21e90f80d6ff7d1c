//! The jobs table: the source of truth for every job's status, attempts and result.
//!
//! Named `autodevops_jobs` because apalis-sqlite keeps its own `Jobs` table in the same
//! SQLite file in embedded mode, and SQLite table names are case-insensitive.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AutodevopsJobs {
    Table,
    Id,
    Kind,
    Queue,
    Tenant,
    Repo,
    Path,
    GitRef,
    Status,
    Attempts,
    MaxAttempts,
    Error,
    Result,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
    EnqueuedAt,
    RunAfter,
    LockedBy,
    LockedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AutodevopsJobs as J;
        manager
            .create_table(
                Table::create()
                    .table(J::Table)
                    .if_not_exists()
                    .col(string_len(J::Id, 36).primary_key())
                    .col(string_len(J::Kind, 32))
                    .col(string_len(J::Queue, 128))
                    .col(string_len_null(J::Tenant, 255))
                    .col(string_len_null(J::Repo, 255))
                    .col(text_null(J::Path))
                    .col(string_len_null(J::GitRef, 255))
                    .col(string_len(J::Status, 16))
                    .col(integer(J::Attempts).default(0))
                    .col(integer(J::MaxAttempts))
                    .col(text_null(J::Error))
                    .col(json_null(J::Result))
                    .col(timestamp_with_time_zone(J::CreatedAt))
                    .col(timestamp_with_time_zone(J::UpdatedAt))
                    .col(timestamp_with_time_zone_null(J::StartedAt))
                    .col(timestamp_with_time_zone_null(J::FinishedAt))
                    .col(timestamp_with_time_zone_null(J::EnqueuedAt))
                    .col(timestamp_with_time_zone_null(J::RunAfter))
                    .col(string_len_null(J::LockedBy, 255))
                    .col(timestamp_with_time_zone_null(J::LockedUntil))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_jobs_status_id", vec![J::Status, J::Id]),
            ("idx_jobs_kind_id", vec![J::Kind, J::Id]),
            ("idx_jobs_repo_id", vec![J::Repo, J::Id]),
            ("idx_jobs_outbox", vec![J::EnqueuedAt, J::Status]),
            ("idx_jobs_lease", vec![J::Status, J::LockedUntil]),
        ] {
            let mut index = Index::create();
            index.name(name).table(J::Table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AutodevopsJobs::Table).to_owned())
            .await
    }
}
