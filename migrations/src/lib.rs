//! Schema migrations (sea-orm-migration), for SQLite and Postgres alike.
//!
//! Every schema change is a new migration; a migration that has shipped is never edited.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_jobs;
mod m20261124_000002_history_and_dedup;
mod m20261124_000003_github_deliveries;
mod m20261124_000004_model_calls;
mod m20261201_000005_github_jobs;
mod m20261201_000010_model_cache;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_jobs::Migration),
            Box::new(m20261124_000002_history_and_dedup::Migration),
            Box::new(m20261124_000003_github_deliveries::Migration),
            Box::new(m20261124_000004_model_calls::Migration),
            Box::new(m20261201_000005_github_jobs::Migration),
            Box::new(m20261201_000010_model_cache::Migration),
        ]
    }
}
