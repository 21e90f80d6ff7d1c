//! The changed files a pull request's analysis shows the `pr_review` chain.

use shared::db::job::Model as Job;
use shared::github::{Installation, PrFile};

use crate::WorkerState;
use crate::error::JobError;

/// For an analysis of pull request: its changed files (filename, status, patch) when the policy
/// has a `pr_review` chain, none when it has not (so no model is asked). `None` for any other job.
pub(super) async fn for_review(
    gh: &Installation,
    job: &Job,
    repo: &str,
    state: &WorkerState,
) -> Result<Option<Vec<PrFile>>, JobError> {
    let Some(number) = job.pr_number else {
        return Ok(None);
    };
    if state.router.as_ref().and_then(|m| m.router("pr_review")).is_none() {
        return Ok(Some(Vec::new()));
    }
    let files = gh.pull_request_files(repo, number).await?;
    tracing::debug!(pr = number, files = files.len(), "pull request files for the review");
    Ok(Some(files))
}
