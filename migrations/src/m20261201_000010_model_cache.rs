//! Model results by what was asked: the same (tenant, source, content hash, job kind, policy
//! version) answers from here with no provider call. `key` is a hash of those five.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ModelCache {
    Table,
    Key,
    Tenant,
    Source,
    ContentHash,
    Kind,
    PolicyVersion,
    Result,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ModelCache as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .if_not_exists()
                    .col(string_len(C::Key, 64).primary_key())
                    .col(string_len(C::Tenant, 255))
                    .col(text(C::Source))
                    .col(string_len(C::ContentHash, 64))
                    .col(string_len(C::Kind, 32))
                    .col(string_len(C::PolicyVersion, 32))
                    .col(json(C::Result))
                    .col(timestamp_with_time_zone(C::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_model_cache_tenant")
                    .table(C::Table)
                    .col(C::Tenant)
                    .col(C::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModelCache::Table).to_owned())
            .await
    }
}
