//! `analysis`: the offline analyser's report of a checkout.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::job::Model as Job;

use crate::error::JobError;

pub(super) async fn run(job: &Job, opts: &AnalyzeOptions) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    Ok(super::result_with(job, json!({ "report": report })))
}
