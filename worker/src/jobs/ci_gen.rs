//! `ci_gen`: a GitHub Actions workflow for the stacks the analyser found.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::job::Model as Job;

use crate::error::JobError;

pub(super) async fn run(job: &Job, opts: &AnalyzeOptions) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    let workflow = shared::analysis::generate_ci(&report);
    Ok(super::result_with(
        job,
        json!({ "workflow": workflow, "existing_ci": report.ci }),
    ))
}
