//! `sync`: refreshes what AutoDevOps knows of a repository — its inventory (languages,
//! stacks, CI files, test layout) without the findings of a full analysis.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::job::Model as Job;

use crate::error::JobError;

pub(super) async fn run(job: &Job, opts: &AnalyzeOptions) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    Ok(super::result_with(
        job,
        json!({
            "inventory": {
                "languages": report.languages,
                "stacks": report.stacks,
                "ci": report.ci,
                "tests": report.tests,
                "summary": report.summary,
            }
        }),
    ))
}
