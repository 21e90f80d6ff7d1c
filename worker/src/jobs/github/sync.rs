//! `sync` on GitHub: mirror an installation's repositories, and ask GitHub to redeliver the
//! webhook deliveries that failed or never reached us.

use serde_json::{Value, json};
use shared::db::deliveries;
use shared::db::github as mirror;
use shared::db::job::Model as Job;
use shared::github::{GithubApp, Installation};

use crate::WorkerState;
use crate::error::JobError;

fn db_err(e: shared::db::DbError) -> JobError {
    JobError::Retryable(e.to_string())
}

/// Mirrors the installation's repositories (default branch, archived, language); repositories
/// no longer listed are marked removed. An uninstalled App only marks everything removed:
/// GitHub refuses tokens for a deleted installation.
pub(super) async fn installation(gh: &Installation, job: &Job, state: &WorkerState) -> Result<Value, JobError> {
    let db = &state.db.conn;
    let action = job.trigger.as_ref().and_then(|t| t["action"].as_str()).unwrap_or("");
    let id = gh.id();
    match action {
        "deleted" => {
            mirror::set_installation(db, id, None, "deleted")
                .await
                .map_err(db_err)?;
            let removed = mirror::remove_all_repositories(db, id).await.map_err(db_err)?;
            return Ok(json!({ "installation": id, "status": "deleted", "removed": removed }));
        }
        "suspend" => {
            mirror::set_installation(db, id, None, "suspended")
                .await
                .map_err(db_err)?;
            return Ok(json!({ "installation": id, "status": "suspended" }));
        }
        _ => {}
    }
    let records = gh.list_repositories().await?;
    let account = records
        .first()
        .and_then(|r| r.full_name.split('/').next())
        .map(str::to_owned);
    mirror::set_installation(db, id, account.as_deref(), "active")
        .await
        .map_err(db_err)?;
    let (mirrored, removed) = mirror::mirror_repositories(db, id, &records).await.map_err(db_err)?;
    Ok(json!({
        "installation": id,
        "status": "active",
        "repositories": mirrored,
        "removed": removed,
        "names": records.iter().map(|r| r.full_name.as_str()).collect::<Vec<_>>(),
    }))
}

/// At most this many redeliveries are requested per run (a storm is not answered with one).
const MAX_REDELIVERIES: usize = 50;

/// Lists the App's recent deliveries and asks GitHub to redeliver those that failed (no 2xx
/// attempt) or that we never recorded — GitHub does not redeliver on its own.
pub(super) async fn redeliver(app: &GithubApp, state: &WorkerState) -> Result<Value, JobError> {
    let listed = app.list_hook_deliveries(100).await?;
    let guids: Vec<String> = listed.iter().map(|d| d.guid.clone()).collect();
    let known = deliveries::known(&state.db.conn, &guids).await.map_err(db_err)?;
    // Several attempts share a guid: one that succeeded settles it.
    let succeeded: std::collections::HashSet<&str> = listed
        .iter()
        .filter(|d| (200..300).contains(&d.status_code))
        .map(|d| d.guid.as_str())
        .collect();
    let mut asked = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in &listed {
        if asked.len() >= MAX_REDELIVERIES || !seen.insert(d.guid.as_str()) {
            continue;
        }
        if known.contains(&d.guid) || succeeded.contains(d.guid.as_str()) {
            continue;
        }
        app.redeliver(d.id).await?;
        tracing::info!(delivery = %d.guid, event = %d.event, status = d.status_code, "asked GitHub to redeliver");
        asked.push(d.guid.clone());
    }
    Ok(json!({ "listed": listed.len(), "redelivered": asked }))
}
