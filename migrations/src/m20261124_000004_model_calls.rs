//! Audit of every model call: which job and tenant, which provider and model, tokens, latency,
//! outcome and the step of the fallback chain it was.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ModelCalls {
    Table,
    Id,
    JobId,
    Tenant,
    Provider,
    Model,
    InputTokens,
    OutputTokens,
    CostUsd,
    LatencyMs,
    Outcome,
    Step,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ModelCalls as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .if_not_exists()
                    .col(string_len(M::Id, 36).primary_key())
                    .col(string_len(M::JobId, 36))
                    .col(string_len_null(M::Tenant, 255))
                    .col(string_len(M::Provider, 32))
                    .col(string_len(M::Model, 255))
                    .col(big_integer(M::InputTokens))
                    .col(big_integer(M::OutputTokens))
                    .col(double_null(M::CostUsd))
                    .col(big_integer(M::LatencyMs))
                    .col(string_len(M::Outcome, 32))
                    .col(integer(M::Step))
                    .col(timestamp_with_time_zone(M::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_model_calls_job")
                    .table(M::Table)
                    .col(M::JobId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModelCalls::Table).to_owned())
            .await
    }
}
