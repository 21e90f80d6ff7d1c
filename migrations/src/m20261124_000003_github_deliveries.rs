//! Every GitHub webhook delivery, for audit and de-duplication: GitHub may deliver the same
//! X-GitHub-Delivery twice (redeliveries); the primary key makes the second one a no-op.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GithubDeliveries {
    Table,
    Id,
    Event,
    Action,
    InstallationId,
    Repo,
    ReceivedAt,
    Outcome,
    Reason,
    JobId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use GithubDeliveries as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .if_not_exists()
                    .col(string_len(D::Id, 64).primary_key())
                    .col(string_len(D::Event, 64))
                    .col(string_len_null(D::Action, 64))
                    .col(big_integer_null(D::InstallationId))
                    .col(string_len_null(D::Repo, 255))
                    .col(timestamp_with_time_zone(D::ReceivedAt))
                    .col(string_len(D::Outcome, 32))
                    .col(text_null(D::Reason))
                    .col(string_len_null(D::JobId, 36))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_received")
                    .table(D::Table)
                    .col(D::ReceivedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GithubDeliveries::Table).to_owned())
            .await
    }
}
