//! `analysis`: the offline analyser's report of a checkout, and — when models are configured —
//! a model's review of it, routed through the analysis chain of the routing policy. Each model
//! gets the context packed into its own window; the tenant's budget pays for every call. The
//! same question (tenant, source, content, kind, policy version) is answered from the result
//! cache without a call. When every model fails or the budget is spent the offline report
//! stands alone, and the result says which models were tried and why they were not used.

use std::sync::Mutex;

use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::db::model_cache;
use shared::models::prompt::{self, PackedContext};
use shared::models::quota::ANONYMOUS;
use shared::models::{CallPlan, ModelService, ModelSpec, RouteError, Tokenizer};

use crate::error::JobError;

const KIND: &str = "analysis";

pub(super) async fn run(
    job: &Job,
    opts: &AnalyzeOptions,
    models: Option<&ModelService>,
    db: &Db,
) -> Result<Value, JobError> {
    let report = super::analyse_checkout(job, opts).await?;
    let Some((models, router)) = models.and_then(|m| Some((m, m.router(KIND)?))) else {
        return Ok(super::result_with(job, json!({ "report": report })));
    };
    let root = super::checkout(job)?;
    let blocks = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || prompt::collect(&root, &report))
            .await
            .map_err(|e| JobError::Retryable(format!("packing task failed: {e}")))?
    };
    let tenant = job.tenant.as_deref().unwrap_or(ANONYMOUS);
    let source = match (&job.repo, &job.path) {
        (Some(repo), _) => format!(
            "repo:{repo}@{}",
            job.head_sha.as_deref().or(job.git_ref.as_deref()).unwrap_or("")
        ),
        (None, path) => format!("path:{}", path.as_deref().unwrap_or("")),
    };
    let content = prompt::content_hash(&blocks, &report);
    let version = models.policy().version();
    let key = shared::models::cache_key(tenant, &source, &content, KIND, version);
    let db_err = |e: shared::db::DbError| JobError::Retryable(format!("model cache: {e}"));

    if let Some(hit) = model_cache::get(&db.conn, &key).await.map_err(db_err)? {
        metrics::counter!("autodevops_model_cache_total", "outcome" => "hit").increment(1);
        tracing::info!(cache_key = %key, "model result answered from the cache");
        let mut result = super::result_with(job, hit.result);
        result["report"] = json!(report);
        result["cache"] = json!({ "hit": true, "key": key, "policy_version": version, "stored_at": hit.created_at });
        return Ok(result);
    }
    metrics::counter!("autodevops_model_cache_total", "outcome" => "miss").increment(1);

    let packed: Mutex<Vec<(String, PackedContext)>> = Mutex::default();
    let build = |spec: &ModelSpec, tokenizer: &Tokenizer| {
        let (request, context) = prompt::analysis_request_for(&report, &blocks, spec, tokenizer);
        packed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((spec.label(), context));
        request
    };
    let required = prompt::analysis_required();
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
            });
            let entry = model_cache::Model {
                key: key.clone(),
                tenant: tenant.to_owned(),
                source,
                content_hash: content,
                kind: KIND.to_owned(),
                policy_version: version.to_owned(),
                result: answer.clone(),
                created_at: chrono::Utc::now(),
            };
            if let Err(e) = model_cache::put(&db.conn, entry).await {
                tracing::warn!(error = %e, "could not store the model result in the cache");
            }
            let mut result = super::result_with(job, answer);
            result["report"] = json!(report);
            result["cache"] = json!({ "hit": false, "key": key, "policy_version": version });
            Ok(result)
        }
        Err(RouteError::Exhausted { fallbacks, .. }) => {
            let mut result = super::result_with(job, json!({ "report": report }));
            result["fallbacks"] = json!(fallbacks);
            result["cost_usd"] = json!(cost);
            Ok(result)
        }
        Err(e @ RouteError::Rejected { .. }) => Err(JobError::Permanent(e.to_string())),
    }
}
