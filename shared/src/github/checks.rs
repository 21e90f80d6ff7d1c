//! Check runs: create one in progress, complete it with output and annotations.

use chrono::Utc;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::truncate_chars;
use super::{GithubError, Installation, urls};

/// GitHub accepts at most this many annotations per check-run request.
pub const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;
/// Longest `summary` / `text` GitHub accepts, in characters.
pub const MAX_OUTPUT_CHARS: usize = 65_535;

const CONCLUSIONS: &[&str] = &[
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];
const LEVELS: &[&str] = &["notice", "warning", "failure"];

/// How a check run ended, and its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConclusion {
    /// `success`, `failure`, `neutral`, `skipped`, `cancelled`, `timed_out`, `action_required`.
    pub conclusion: String,
    pub title: String,
    /// Markdown; cut to 65 535 characters.
    pub summary: String,
    pub text: Option<String>,
}

/// One line-level annotation, as GitHub's check-run `output.annotations[]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// `notice`, `warning` or `failure`.
    pub annotation_level: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Deserialize)]
struct CheckRunId {
    id: i64,
}

#[derive(Deserialize)]
struct ListedCheckRun {
    id: i64,
    #[serde(default)]
    external_id: Option<String>,
}

impl Installation {
    /// Creates a check run `name` on `head_sha`, status `in_progress`; returns its id. When
    /// the answer is lost (5xx, timeout), the run is looked up by `external_id` rather than
    /// posted again.
    pub async fn create_check_run(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<i64, GithubError> {
        let url = self.app.url(&format!("repos/{}/check-runs", urls::repo(repo)?))?;
        let body = json!({
            "name": name,
            "head_sha": head_sha,
            "status": "in_progress",
            "started_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "external_id": external_id,
        });
        match self.create::<CheckRunId>(url, body).await {
            Ok(run) => Ok(run.id),
            // GitHub may have created it: the answer was lost. Found, it is ours; else the
            // job's next attempt creates it.
            Err(e) if e.may_have_acted() => match self.find_check_run(repo, head_sha, name, external_id).await? {
                Some(id) => Ok(id),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The check run `name` on `head_sha` created with `external_id`, if there is one: a job
    /// retried after a crash finds the check run its earlier attempt created but could not
    /// record, instead of creating a second one.
    pub async fn find_check_run(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<i64>, GithubError> {
        let mut url = self.app.url(&format!(
            "repos/{}/commits/{}/check-runs",
            urls::repo(repo)?,
            urls::segment(head_sha)
        ))?;
        url.query_pairs_mut()
            .append_pair("check_name", name)
            .append_pair("filter", "all")
            .append_pair("per_page", "100");
        let runs: Vec<ListedCheckRun> = self.paginate(url, Some("check_runs")).await?;
        Ok(runs
            .into_iter()
            .find(|r| r.external_id.as_deref() == Some(external_id))
            .map(|r| r.id))
    }

    /// Completes check run `id`: the first PATCH sets the conclusion with the first 50
    /// annotations, each further batch of 50 is one more PATCH of the output.
    pub async fn complete_check_run(
        &self,
        repo: &str,
        id: i64,
        result: &CheckConclusion,
        annotations: &[Annotation],
    ) -> Result<(), GithubError> {
        if !CONCLUSIONS.contains(&result.conclusion.as_str()) {
            return Err(GithubError::InvalidInput(format!(
                "unknown check conclusion {:?}",
                result.conclusion
            )));
        }
        if let Some(a) = annotations
            .iter()
            .find(|a| !LEVELS.contains(&a.annotation_level.as_str()))
        {
            return Err(GithubError::InvalidInput(format!(
                "unknown annotation level {:?}",
                a.annotation_level
            )));
        }
        let url = self.app.url(&format!("repos/{}/check-runs/{id}", urls::repo(repo)?))?;
        let title = truncate_chars(&result.title, 1024);
        let summary = truncate_chars(&result.summary, MAX_OUTPUT_CHARS);
        let text = result.text.as_deref().map(|t| truncate_chars(t, MAX_OUTPUT_CHARS));

        let mut batches = annotations.chunks(MAX_ANNOTATIONS_PER_REQUEST);
        let mut output = json!({ "title": title, "summary": summary });
        if let Some(t) = &text {
            output["text"] = json!(t);
        }
        if let Some(first) = batches.next() {
            output["annotations"] = json!(first);
        }
        let body = json!({
            "status": "completed",
            "conclusion": result.conclusion,
            "completed_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "output": output,
        });
        let _: serde_json::Value = self.write(Method::PATCH, url.clone(), body).await?;
        for batch in batches {
            let body = json!({
                "output": { "title": title, "summary": summary, "annotations": batch },
            });
            let _: serde_json::Value = self.write(Method::PATCH, url.clone(), body).await?;
        }
        Ok(())
    }
}
