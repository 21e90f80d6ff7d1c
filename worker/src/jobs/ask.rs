//! One question to a job kind's chain of models (analysis, pull request review, CI review):
//! answered from the result cache when the same question was answered before (tenant, source,
//! content, kind, policy version), else routed with the tenant's budget paying for every call.
//! Every call is audited in `model_calls`. When no model answers the caller keeps its offline
//! result and the fallbacks say why.

use std::sync::Mutex;

use serde_json::{Value, json};
use shared::analysis::AnalysisReport;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::db::model_cache;
use shared::models::prompt::{self, Block, PackedContext, Purpose};
use shared::models::quota::ANONYMOUS;
use shared::models::{CallPlan, ModelService, ModelSpec, RouteError, Router, Tokenizer};

use crate::error::JobError;

/// What is asked: the policy's job kind (its chain), the purpose (prompt and schema), the
/// offline facts and the candidate blocks in priority order.
pub(super) struct Question<'a> {
    pub kind: &'static str,
    pub purpose: Purpose<'a>,
    pub report: &'a AnalysisReport,
    pub blocks: &'a [Block],
}

/// The cache's notion of where a job's content comes from.
fn source_of(job: &Job) -> String {
    match (&job.repo, &job.path) {
        (Some(repo), _) => format!(
            "repo:{repo}@{}",
            job.head_sha.as_deref().or(job.git_ref.as_deref()).unwrap_or("")
        ),
        (None, path) => format!("path:{}", path.as_deref().unwrap_or("")),
    }
}

/// Asks `router` (the chain of `q.kind`). Returns the fields to merge into the job's result:
/// with an answer `review` (the model's JSON), `context` (what was included and omitted),
/// `model`, `fallbacks`, `usage`, `cost_usd`, `chain` and `cache`; without one `fallbacks`,
/// `cost_usd` and `chain`. A request the provider rejects as malformed fails the job.
pub(super) async fn ask(
    job: &Job,
    models: &ModelService,
    router: &Router,
    db: &Db,
    q: Question<'_>,
) -> Result<Value, JobError> {
    let tenant = job.tenant.as_deref().unwrap_or(ANONYMOUS);
    let source = source_of(job);
    let content = q.purpose.content_hash(q.blocks, q.report);
    let version = models.policy().version();
    let key = shared::models::cache_key(tenant, &source, &content, q.kind, version);
    let db_err = |e: shared::db::DbError| JobError::Retryable(format!("model cache: {e}"));

    if let Some(hit) = model_cache::get(&db.conn, &key).await.map_err(db_err)? {
        metrics::counter!("autodevops_model_cache_total", "outcome" => "hit").increment(1);
        tracing::info!(cache_key = %key, kind = q.kind, "model result answered from the cache");
        let mut answer = hit.result;
        answer["cache"] = json!({ "hit": true, "key": key, "policy_version": version, "stored_at": hit.created_at });
        return Ok(answer);
    }
    metrics::counter!("autodevops_model_cache_total", "outcome" => "miss").increment(1);

    let packed: Mutex<Vec<(String, PackedContext)>> = Mutex::default();
    let build = |spec: &ModelSpec, tokenizer: &Tokenizer| {
        let (request, context) = prompt::request_for(q.purpose, q.report, q.blocks, spec, tokenizer);
        packed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((spec.label(), context));
        request
    };
    let required = q.purpose.required();
    let routed = router
        .complete(&CallPlan {
            request: &build,
            required: &required,
            quota: Some((models.quota().as_ref(), tenant)),
        })
        .await;
    let calls = match &routed {
        Ok(r) => r.calls.as_slice(),
        Err(e) => e.calls(),
    };
    let cost: f64 = calls.iter().filter_map(|c| c.cost_usd).sum();
    shared::db::model_call::record_all(&db.conn, &job.id, job.tenant.as_deref(), calls)
        .await
        .map_err(|e| JobError::Retryable(format!("recording model calls: {e}")))?;
    match routed {
        Ok(routed) => {
            let label = routed.spec.label();
            let context = packed
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .into_iter()
                .rev()
                .find(|(l, _)| *l == label)
                .map(|(_, c)| c)
                .unwrap_or_default();
            let answer = json!({
                "review": routed.object,
                "context": context,
                "model": format!("{}/{}", routed.response.provider, routed.response.model),
                "fallbacks": routed.fallbacks,
                "usage": {
                    "input_tokens": routed.response.input_tokens,
                    "output_tokens": routed.response.output_tokens,
                },
                "cost_usd": cost,
                "chain": q.kind,
            });
            let entry = model_cache::Model {
                key: key.clone(),
                tenant: tenant.to_owned(),
                source,
                content_hash: content,
                kind: q.kind.to_owned(),
                policy_version: version.to_owned(),
                result: answer.clone(),
                created_at: chrono::Utc::now(),
            };
            if let Err(e) = model_cache::put(&db.conn, entry).await {
                tracing::warn!(error = %e, "could not store the model result in the cache");
            }
            let mut answer = answer;
            answer["cache"] = json!({ "hit": false, "key": key, "policy_version": version });
            Ok(answer)
        }
        Err(RouteError::Exhausted { fallbacks, calls }) => {
            // Every model was skipped because the tenant's budget is spent: with
            // BUDGET_EXHAUSTED=defer the job waits for the reset instead of going offline.
            let budget_only = !fallbacks.is_empty() && fallbacks.iter().all(|f| f.reason.contains("budget exhausted"));
            if calls.is_empty() && budget_only && models.quota().defers_when_spent() {
                let now = chrono::Utc::now();
                let wait = shared::models::quota::until_reset(now);
                return Err(JobError::Deferred {
                    until: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(24)),
                    reason: fallbacks[0].reason.clone(),
                });
            }
            Ok(json!({ "fallbacks": fallbacks, "cost_usd": cost, "chain": q.kind }))
        }
        Err(e @ RouteError::Rejected { .. }) => Err(JobError::Permanent(e.to_string())),
    }
}
