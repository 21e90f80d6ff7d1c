//! GitHub work: what a job is about on GitHub (installation, commit, pull request, what
//! triggered it, the check run it owns), coalescing of superseded analyses, and the mirror of
//! each installation's repositories kept by `sync` jobs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AutodevopsJobs {
    Table,
    InstallationId,
    HeadSha,
    PrNumber,
    Trigger,
    DeliveryId,
    CheckRunId,
    CoalesceKey,
    SupersededBy,
}

#[derive(DeriveIden)]
enum GithubInstallations {
    Table,
    Id,
    Account,
    Status,
    ReposSyncedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GithubRepositories {
    Table,
    Id,
    InstallationId,
    FullName,
    DefaultBranch,
    Archived,
    Private,
    Language,
    RemovedAt,
    UpdatedAt,
}

/// Active jobs that a newer one of the same key supersedes (same SQL on SQLite and Postgres).
const COALESCE_INDEX: &str = "CREATE INDEX IF NOT EXISTS idx_jobs_coalesce_active \
     ON autodevops_jobs (coalesce_key) WHERE status IN ('queued', 'retrying', 'running')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AutodevopsJobs as J;
        // SQLite adds one column per ALTER TABLE.
        for col in [
            big_integer_null(J::InstallationId),
            string_len_null(J::HeadSha, 64),
            big_integer_null(J::PrNumber),
            json_null(J::Trigger),
            string_len_null(J::DeliveryId, 64),
            big_integer_null(J::CheckRunId),
            string_len_null(J::CoalesceKey, 1024),
            string_len_null(J::SupersededBy, 36),
        ] {
            manager
                .alter_table(Table::alter().table(J::Table).add_column(col).to_owned())
                .await?;
        }
        manager.get_connection().execute_unprepared(COALESCE_INDEX).await?;

        use GithubInstallations as I;
        manager
            .create_table(
                Table::create()
                    .table(I::Table)
                    .if_not_exists()
                    .col(big_integer(I::Id).primary_key())
                    .col(string_len_null(I::Account, 255))
                    .col(string_len(I::Status, 16))
                    .col(timestamp_with_time_zone_null(I::ReposSyncedAt))
                    .col(timestamp_with_time_zone(I::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        use GithubRepositories as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .if_not_exists()
                    .col(big_integer(R::Id).primary_key())
                    .col(big_integer(R::InstallationId))
                    .col(string_len(R::FullName, 255))
                    .col(string_len(R::DefaultBranch, 255))
                    .col(boolean(R::Archived))
                    .col(boolean(R::Private))
                    .col(string_len_null(R::Language, 64))
                    .col(timestamp_with_time_zone_null(R::RemovedAt))
                    .col(timestamp_with_time_zone(R::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_repositories_installation")
                    .table(R::Table)
                    .col(R::InstallationId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GithubRepositories::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(GithubInstallations::Table).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_jobs_coalesce_active")
            .await?;
        use AutodevopsJobs as J;
        for col in [
            J::SupersededBy,
            J::CoalesceKey,
            J::CheckRunId,
            J::DeliveryId,
            J::Trigger,
            J::PrNumber,
            J::HeadSha,
            J::InstallationId,
        ] {
            manager
                .alter_table(Table::alter().table(J::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
