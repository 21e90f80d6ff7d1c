//! The mirror of GitHub App installations and their repositories, kept by `sync` jobs.

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::DbError;
use super::installation::{self, Entity as Installations};
use super::repository::{self, Column as R, Entity as Repositories, Model as Repository};
use crate::github::RepoInfo;

/// Sets an installation's status (`active`, `suspended`, `deleted`), creating its row.
pub async fn set_installation(
    db: &impl ConnectionTrait,
    id: i64,
    account: Option<&str>,
    status: &str,
) -> Result<(), DbError> {
    let row = installation::ActiveModel {
        id: Set(id),
        account: Set(account.map(str::to_owned)),
        status: Set(status.to_owned()),
        repos_synced_at: Set(None),
        updated_at: Set(Utc::now()),
    };
    let mut update = vec![installation::Column::Status, installation::Column::UpdatedAt];
    if account.is_some() {
        update.push(installation::Column::Account);
    }
    Installations::insert(row)
        .on_conflict(
            OnConflict::column(installation::Column::Id)
                .update_columns(update)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Mirrors the full list of an installation's repositories: upserts every one and marks the
/// ones no longer listed as removed. Returns (upserted, removed).
pub async fn mirror_repositories(
    db: &impl ConnectionTrait,
    installation_id: i64,
    repos: &[RepoInfo],
) -> Result<(usize, u64), DbError> {
    let now = Utc::now();
    for r in repos {
        let row = repository::ActiveModel {
            id: Set(r.id),
            installation_id: Set(installation_id),
            full_name: Set(r.full_name.clone()),
            default_branch: Set(r.default_branch.clone()),
            archived: Set(r.archived),
            private: Set(r.private),
            language: Set(r.language.clone()),
            removed_at: Set(None),
            updated_at: Set(now),
        };
        Repositories::insert(row)
            .on_conflict(
                OnConflict::column(R::Id)
                    .update_columns([
                        R::InstallationId,
                        R::FullName,
                        R::DefaultBranch,
                        R::Archived,
                        R::Private,
                        R::Language,
                        R::RemovedAt,
                        R::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let listed: Vec<i64> = repos.iter().map(|r| r.id).collect();
    let removed = Repositories::update_many()
        .col_expr(R::RemovedAt, Expr::value(now))
        .col_expr(R::UpdatedAt, Expr::value(now))
        .filter(R::InstallationId.eq(installation_id))
        .filter(R::RemovedAt.is_null())
        .filter(R::Id.is_not_in(listed))
        .exec(db)
        .await?
        .rows_affected;
    Installations::update_many()
        .col_expr(installation::Column::ReposSyncedAt, Expr::value(now))
        .filter(installation::Column::Id.eq(installation_id))
        .exec(db)
        .await?;
    Ok((repos.len(), removed))
}

/// Marks every repository of an installation removed (the App was uninstalled).
pub async fn remove_all_repositories(db: &impl ConnectionTrait, installation_id: i64) -> Result<u64, DbError> {
    let now = Utc::now();
    Ok(Repositories::update_many()
        .col_expr(R::RemovedAt, Expr::value(now))
        .col_expr(R::UpdatedAt, Expr::value(now))
        .filter(R::InstallationId.eq(installation_id))
        .filter(R::RemovedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// The mirrored repositories of an installation, by name (removed ones included).
pub async fn repositories(db: &impl ConnectionTrait, installation_id: i64) -> Result<Vec<Repository>, DbError> {
    Ok(Repositories::find()
        .filter(R::InstallationId.eq(installation_id))
        .order_by_asc(R::FullName)
        .all(db)
        .await?)
}

/// A mirrored repository by its full name, if known and not removed.
pub async fn repository_by_name(db: &impl ConnectionTrait, full_name: &str) -> Result<Option<Repository>, DbError> {
    Ok(Repositories::find()
        .filter(R::FullName.eq(full_name))
        .filter(R::RemovedAt.is_null())
        .one(db)
        .await?)
}
