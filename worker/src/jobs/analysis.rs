//! `analysis`: the offline analyser's report of a checkout, and — when models are configured —
//! a model's review of it, routed through the provider chain. When every model fails the
//! offline report stands alone, and the result says which models were tried and why they failed.

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::models::prompt::{self, PackedContext};
use shared::models::{RouteError, Router};

use crate::error::JobError;

/// Repository content sent to a model, at most (estimated tokens).
const CONTEXT_BUDGET_TOKENS: u64 = 12_000;
const MAX_OUTPUT_TOKENS: u32 = 2_000;

pub(super) async fn run(job: &Job, opts: &AnalyzeOptions, router: Option<&Router>, db: &Db) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    let Some(router) = router else {
        return Ok(super::result_with(job, json!({ "report": report })));
    };
    let root = super::checkout(job)?;
    let packed: PackedContext = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || prompt::pack(&root, &report, CONTEXT_BUDGET_TOKENS))
            .await
            .map_err(|e| JobError::Retryable(format!("packing task failed: {e}")))?
    };
    let request = prompt::analysis_request(&report, &packed, MAX_OUTPUT_TOKENS);
    let routed = router.complete_json(&request, &prompt::analysis_required()).await;
    let calls = match &routed {
        Ok(r) => r.calls.as_slice(),
        Err(e) => e.calls(),
    };
    shared::db::model_call::record_all(&db.conn, &job.id, job.tenant.as_deref(), calls)
        .await
        .map_err(|e| JobError::Retryable(format!("recording model calls: {e}")))?;
    match routed {
        Ok(routed) => {
            let mut result = super::result_with(
                job,
                json!({ "report": report, "review": routed.object, "context": packed }),
            );
            result["model"] = json!(format!("{}/{}", routed.response.provider, routed.response.model));
            result["fallbacks"] = json!(routed.fallbacks);
            result["usage"] = json!({
                "input_tokens": routed.response.input_tokens,
                "output_tokens": routed.response.output_tokens,
            });
            Ok(result)
        }
        Err(RouteError::Exhausted { fallbacks, .. }) => {
            let mut result = super::result_with(job, json!({ "report": report }));
            result["fallbacks"] = json!(fallbacks);
            Ok(result)
        }
        Err(e @ RouteError::Rejected { .. }) => Err(JobError::Permanent(e.to_string())),
    }
}
