//! Storage: one sea-orm connection (SQLite or Postgres) and the job repository.

pub mod deliveries;
pub mod delivery;
pub mod github;
pub mod installation;
pub mod job;
pub mod jobs;
pub mod model_cache;
pub mod model_call;
pub mod repository;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, SqlxSqliteConnector};

use crate::config::DatabaseUrl;

pub use sea_orm::sqlx::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database: {0}")]
    Connect(String),
    #[error("database error: {0}")]
    Query(#[from] DbErr),
}

/// A database handle. In embedded mode it also exposes the raw SQLite pool, which the
/// SQLite-backed queue shares (one file, one pool).
#[derive(Clone, Debug)]
pub struct Db {
    pub conn: DatabaseConnection,
    pub sqlite: Option<SqlitePool>,
}

impl Db {
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, DbError> {
        match url {
            DatabaseUrl::Sqlite(u) => {
                // WAL + synchronous=NORMAL: a committed job survives a crash of this process;
                // only an OS crash or power loss can lose the last transactions. apalis-sqlite's
                // own `setup` would set synchronous=OFF, so we run its migrations ourselves.
                let opts = SqliteConnectOptions::from_str(u)
                    .map_err(|e| DbError::Connect(e.to_string()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(15))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts)
                    .await
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                Ok(Db {
                    conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone()),
                    sqlite: Some(pool),
                })
            }
            DatabaseUrl::Postgres(u) => {
                let mut opts = ConnectOptions::new(u.clone());
                opts.max_connections(16)
                    .min_connections(1)
                    .connect_timeout(Duration::from_secs(10))
                    .acquire_timeout(Duration::from_secs(10))
                    .sqlx_logging(false);
                let conn = Database::connect(opts)
                    .await
                    .map_err(|e| DbError::Connect(redact_db_error(&e.to_string(), u)))?;
                Ok(Db { conn, sqlite: None })
            }
        }
    }

    /// Round trip to the database; returns its latency.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let start = Instant::now();
        self.conn.execute_unprepared("SELECT 1").await.map_err(DbError::Query)?;
        Ok(start.elapsed())
    }
}

/// Connection errors may echo the URL; never let a password through.
fn redact_db_error(msg: &str, url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.password() {
            Some(pw) if !pw.is_empty() => msg.replace(pw, "***"),
            _ => msg.to_owned(),
        },
        Err(_) => msg.to_owned(),
    }
}

/// Splits `items` into runs whose lengths are powers of two, largest first (13 → 8, 4, 1). A
/// multi-row statement then has one of a few shapes: Postgres parses and plans each new
/// statement text, and sqlx caches a prepared statement per text and connection, so one text
/// per batch size made Postgres plan almost every batch's statements again.
pub(crate) fn pow2_chunks<T>(mut items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while !items.is_empty() {
        let rest = items.split_off(1 << items.len().ilog2());
        out.push(std::mem::replace(&mut items, rest));
    }
    out
}

#[cfg(test)]
mod chunk_tests {
    use super::pow2_chunks;

    #[test]
    fn runs_are_powers_of_two_in_order() {
        let lens = |n: usize| {
            pow2_chunks((0..n).collect::<Vec<_>>())
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(lens(0), Vec::<usize>::new());
        assert_eq!(lens(1), [1]);
        assert_eq!(lens(13), [8, 4, 1]);
        assert_eq!(lens(64), [64]);
        assert_eq!(
            pow2_chunks((0..7).collect()),
            vec![vec![0, 1, 2, 3], vec![4, 5], vec![6]]
        );
    }
}
