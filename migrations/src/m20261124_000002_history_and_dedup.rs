//! Every failed attempt is kept (`history`), and `dedup_key` makes a second submission of the
//! same work, while the first is still waiting or running, return the first job.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AutodevopsJobs {
    Table,
    History,
    DedupKey,
}

/// One active job per key. A partial index: finished jobs keep their key for the record.
/// The same SQL is valid on SQLite and Postgres.
const DEDUP_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS idx_jobs_dedup_active \
     ON autodevops_jobs (dedup_key) WHERE status IN ('queued', 'retrying', 'running')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            json_null(AutodevopsJobs::History),
            string_len_null(AutodevopsJobs::DedupKey, 1024),
        ] {
            manager
                .alter_table(Table::alter().table(AutodevopsJobs::Table).add_column(col).to_owned())
                .await?;
        }
        manager.get_connection().execute_unprepared(DEDUP_INDEX).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_jobs_dedup_active")
            .await?;
        for col in [AutodevopsJobs::DedupKey, AutodevopsJobs::History] {
            manager
                .alter_table(Table::alter().table(AutodevopsJobs::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
