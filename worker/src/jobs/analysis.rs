//! `analysis`: the offline analyser's report of a checkout, and — when models are configured —
//! a model's review of it (see [`super::ask`]). A pull request's analysis (its changed files
//! given) uses the `pr_review` chain and shows the model the diffs and changed files first; any
//! other uses the `analysis` chain. When every model fails or the budget is spent the offline
//! report stands alone, and the result says which models were tried and why they were not used.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::github::PrFile;
use shared::models::ModelService;
use shared::models::prompt::{self, Purpose};

use super::ask::{self, Question};
use crate::error::JobError;

/// Analyses the job's checkout; `changes` are the pull request's files when it reviews one.
pub(super) async fn run(
    job: &Job,
    opts: &AnalyzeOptions,
    models: Option<&ModelService>,
    db: &Db,
    changes: Option<Vec<PrFile>>,
) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    let (kind, purpose) = match changes {
        Some(_) => ("pr_review", Purpose::PrReview),
        None => ("analysis", Purpose::Analysis),
    };
    let Some((models, router)) = models.and_then(|m| Some((m, m.router(kind)?))) else {
        return Ok(super::result_with(job, json!({ "report": report })));
    };
    let root = super::checkout(job)?;
    let blocks = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || match changes {
            Some(changes) => prompt::pr_blocks(&root, &report, &changes),
            None => prompt::collect(&root, &report),
        })
        .await
        .map_err(|e| JobError::Retryable(format!("packing task failed: {e}")))?
    };
    let question = Question {
        kind,
        purpose,
        report: &report,
        blocks: &blocks,
    };
    let answer = ask::ask(job, models, router, db, question).await?;
    let mut result = super::result_with(job, answer);
    result["report"] = json!(report);
    Ok(result)
}
