//! `ci_gen`: a GitHub Actions workflow for the stacks the analyser found. The workflow itself is
//! deterministic; when models are configured the `ci_gen` chain reviews it (see [`super::ask`])
//! and its notes (`result.review.notes`) go beside it. Offline, or when no model answers, there
//! are no model notes and `result.fallbacks` says why.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::models::ModelService;
use shared::models::prompt::{self, Purpose};

use super::ask::{self, Question};
use crate::error::JobError;

const KIND: &str = "ci_gen";

pub(super) async fn run(
    job: &Job,
    opts: &AnalyzeOptions,
    models: Option<&ModelService>,
    db: &Db,
) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    let workflow = shared::analysis::generate_ci(&report);
    let mut result = super::result_with(job, json!({ "workflow": workflow, "existing_ci": report.ci }));
    let Some((models, router)) = models.and_then(|m| Some((m, m.router(KIND)?))) else {
        return Ok(result);
    };
    let root = super::checkout(job)?;
    let blocks = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || prompt::collect(&root, &report))
            .await
            .map_err(|e| JobError::Retryable(format!("packing task failed: {e}")))?
    };
    let question = Question {
        kind: KIND,
        purpose: Purpose::CiReview {
            path: &workflow.path,
            workflow: &workflow.content,
        },
        report: &report,
        blocks: &blocks,
    };
    let answer = ask::ask(job, models, router, db, question).await?;
    if let (Some(obj), Value::Object(more)) = (result.as_object_mut(), answer) {
        obj.extend(more);
    }
    Ok(result)
}
