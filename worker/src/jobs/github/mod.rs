//! Jobs on GitHub repositories: resolve the commit, fetch its tree, run the job on it, and
//! report back — the check run on the commit, the pull request's one comment, the CI pull
//! request. Every write is idempotent per job: the check run id is stored on the row (a rerun
//! after a crash updates it), the comment is found by its marker, the CI branch and pull
//! request are updated in place.

mod pr_files;
mod render;
mod sync;

use std::path::Path;

use serde_json::{Value, json};
use shared::analysis::AnalysisReport;
use shared::db::job::Model as Job;
use shared::db::jobs;
use shared::domain::{JobKind, JobStatus};
use shared::github::{CheckConclusion, FilePr, GithubError, Installation, TreeLimits};
use shared::webhook::repo_config::{self, RepoConfig};

use crate::WorkerState;
use crate::error::JobError;

/// The check run's name on GitHub.
pub const CHECK_NAME: &str = "AutoDevOps";
/// The branch CI pull requests are opened from (never the default branch).
pub const CI_BRANCH: &str = "autodevops/ci";
const CONFIG_FILE: &str = ".autodevops.yml";

impl From<GithubError> for JobError {
    fn from(e: GithubError) -> Self {
        if e.is_retryable() {
            JobError::Retryable(format!("GitHub: {e}"))
        } else {
            JobError::Permanent(format!("GitHub: {e}"))
        }
    }
}

/// What triggered the job (`trigger.type`): `push`, `pull_request`, `comment`, `rerun`,
/// `installation`, … and the worker's own `reply` and `redeliver`.
fn trigger_type(job: &Job) -> &str {
    job.trigger.as_ref().and_then(|t| t["type"].as_str()).unwrap_or("")
}

/// Runs a GitHub job.
pub(super) async fn run(kind: JobKind, job: &Job, state: &WorkerState) -> Result<Value, JobError> {
    let app = state.github.as_ref().ok_or_else(|| {
        JobError::Permanent(
            "GitHub jobs need the GitHub App configuration (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY) on the worker"
                .into(),
        )
    })?;
    if trigger_type(job) == "redeliver" {
        return sync::redeliver(app, state).await;
    }
    let installation_id = job
        .installation_id
        .ok_or_else(|| JobError::Permanent("GitHub job without an installation".into()))?;
    let gh = app.installation(installation_id);
    match (kind, trigger_type(job)) {
        (_, "reply") => reply(&gh, job).await,
        (JobKind::Sync, _) => sync::installation(&gh, job, state).await,
        (JobKind::Analysis, _) => analysis(&gh, job, state).await,
        (JobKind::CiGen, _) => ci_gen(&gh, job, state).await,
    }
}

fn repo_of(job: &Job) -> Result<&str, JobError> {
    job.repo
        .as_deref()
        .ok_or_else(|| JobError::Permanent(format!("{} job without a repository", job.kind)))
}

/// Posts the reply to a comment command (`/autodevops help`) on the pull request.
async fn reply(gh: &Installation, job: &Job) -> Result<Value, JobError> {
    let repo = repo_of(job)?;
    let number = job
        .pr_number
        .ok_or_else(|| JobError::Permanent("reply without an issue number".into()))?;
    let body = job
        .trigger
        .as_ref()
        .and_then(|t| t["body"].as_str())
        .unwrap_or_default();
    // The marker makes a rerun after a crash update the same reply instead of adding one.
    let marker = format!("<!-- autodevops:reply:{} -->", job.id);
    let comment = gh
        .upsert_sticky_comment(repo, number, &marker, &format!("{marker}\n{body}"))
        .await?;
    Ok(json!({ "source": source(job, None), "reply": { "comment_id": comment.id } }))
}

fn source(job: &Job, sha: Option<&str>) -> Value {
    json!({ "repo": job.repo, "ref": job.git_ref, "sha": sha.or(job.head_sha.as_deref()), "pr": job.pr_number })
}

/// The commit a job works on: the one it names, else (for an analysis) the pull request's
/// head, else the head of the branch it names, else the head of the default branch — where a
/// CI pull request is based.
async fn resolve_sha(gh: &Installation, job: &Job, repo: &str, default_branch: &str) -> Result<String, JobError> {
    if let Some(sha) = &job.head_sha {
        return Ok(sha.clone());
    }
    if let Some(n) = job.pr_number.filter(|_| job.kind == JobKind::Analysis.as_str()) {
        return Ok(gh.pull_request_head(repo, n).await?);
    }
    let git_ref = job.git_ref.as_deref().unwrap_or(default_branch);
    if git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(git_ref.to_owned());
    }
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
    Ok(gh.branch_head(repo, branch).await?)
}

/// The repository's `.autodevops.yml` at `sha` (defaults when absent) and its problems.
async fn repo_config(gh: &Installation, repo: &str, sha: &str) -> Result<(RepoConfig, Vec<String>), JobError> {
    Ok(match gh.get_file(repo, CONFIG_FILE, sha).await? {
        Some(text) => {
            let (config, problems) = repo_config::parse(&text);
            (config, problems.iter().map(|p| format!("{CONFIG_FILE}: {p}")).collect())
        }
        None => (RepoConfig::default(), Vec::new()),
    })
}

fn tree_limits(state: &WorkerState) -> TreeLimits {
    TreeLimits {
        max_file_bytes: state.cfg.max_file_bytes,
        ..TreeLimits::default()
    }
}

/// Downloads the commit's tree into a temporary directory.
async fn checkout(
    gh: &Installation,
    repo: &str,
    sha: &str,
    state: &WorkerState,
) -> Result<(tempfile::TempDir, Value), JobError> {
    let dir = tempfile::Builder::new()
        .prefix("autodevops-")
        .tempdir()
        .map_err(|e| JobError::Retryable(format!("cannot create a work directory: {e}")))?;
    let s = gh.download_tree(repo, sha, dir.path(), &tree_limits(state)).await?;
    let stats = json!({
        "files": s.files,
        "bytes": s.bytes,
        "skipped_large": s.skipped_large,
        "skipped_binary": s.skipped_binary,
        "skipped_links": s.skipped_links,
        "rejected_paths": s.rejected_paths,
        "truncated": s.truncated,
    });
    Ok((dir, stats))
}

/// A copy of the job that points at a local checkout of `sha`, for the path-based runners.
fn local_copy(job: &Job, dir: &Path, sha: &str) -> Job {
    let mut local = job.clone();
    local.path = Some(dir.to_string_lossy().into_owned());
    local.head_sha = Some(sha.to_owned());
    local
}

/// Drops findings under the paths `.autodevops.yml` ignores.
fn drop_ignored(report: &mut AnalysisReport, config: &RepoConfig) {
    if config.ignore_paths.is_empty() {
        return;
    }
    let mut builder = globset::GlobSetBuilder::new();
    for p in &config.ignore_paths {
        if let Ok(g) = globset::Glob::new(p) {
            builder.add(g);
        }
    }
    let Ok(set) = builder.build() else { return };
    report
        .findings
        .retain(|f| f.path.as_deref().is_none_or(|p| !set.is_match(p)));
}

/// What every repository job starts from: the repository, the commit, its configuration.
struct Target<'a> {
    repo: &'a str,
    default_branch: String,
    sha: String,
    config: RepoConfig,
    problems: Vec<String>,
}

/// Resolves the job's target; `Err(result)` when `.autodevops.yml` turns this job off.
async fn target<'a>(
    gh: &Installation,
    job: &'a Job,
    enabled: fn(&RepoConfig) -> bool,
) -> Result<Result<Target<'a>, Value>, JobError> {
    let repo = repo_of(job)?;
    let info = gh.get_repository(repo).await?;
    let sha = resolve_sha(gh, job, repo, &info.default_branch).await?;
    let (config, problems) = repo_config(gh, repo, &sha).await?;
    if !config.enabled || !enabled(&config) {
        return Ok(Err(
            json!({ "source": source(job, Some(&sha)), "skipped": "disabled by .autodevops.yml" }),
        ));
    }
    Ok(Ok(Target {
        repo,
        default_branch: info.default_branch,
        sha,
        config,
        problems,
    }))
}

async fn analysis(gh: &Installation, job: &Job, state: &WorkerState) -> Result<Value, JobError> {
    let Target {
        repo,
        sha,
        config,
        problems,
        ..
    } = match target(gh, job, |c| c.features.analysis).await? {
        Ok(t) => t,
        Err(skipped) => return Ok(skipped),
    };
    if is_draft(job) && !config.draft_prs.unwrap_or(state.cfg.routing.analyze_drafts) {
        return Ok(json!({
            "source": source(job, Some(&sha)),
            "skipped": "draft pull request: set draft_prs: true in .autodevops.yml (or ANALYZE_DRAFT_PRS=true) to analyse drafts",
        }));
    }
    let check_run_id = match (job.check_run_id, config.features.check_run) {
        (Some(id), _) => Some(id),
        (None, true) => Some(check_run(gh, repo, &sha, &job.id).await?),
        (None, false) => None,
    };
    jobs::set_github_progress(&state.db.conn, &job.id, &state.worker_id, &sha, check_run_id)
        .await
        .map_err(|e| JobError::Retryable(e.to_string()))?;

    let changes = pr_files::for_review(gh, job, repo, state).await?;
    let (dir, tree) = checkout(gh, repo, &sha, state).await?;
    let mut result = super::analysis::run(
        &local_copy(job, dir.path(), &sha),
        &state.analyze,
        state.router.as_ref(),
        &state.db,
        changes,
    )
    .await?;
    drop(dir);
    let mut report: AnalysisReport = serde_json::from_value(result["report"].clone())
        .map_err(|e| JobError::Permanent(format!("analysis report: {e}")))?;
    drop_ignored(&mut report, &config);
    result["report"] = json!(report);
    result["source"] = source(job, Some(&sha));

    if !still_ours(job, state).await {
        // Superseded while it ran: the newer job reports; this one's check run is closed as
        // neutral once the runner sees the cancellation.
        return Ok(result);
    }
    let summary = render::summary(&report, &result, &problems);
    if let Some(id) = check_run_id {
        let conclusion = CheckConclusion {
            conclusion: render::conclusion(&report.findings).to_owned(),
            title: render::title(&report.findings),
            summary: summary.clone(),
            text: None,
        };
        gh.complete_check_run(repo, id, &conclusion, &render::annotations(&report.findings))
            .await?;
    }
    let comment_id = match (job.pr_number, config.features.pr_comment) {
        (Some(number), true) => {
            let body = render::pr_comment(&sha, &summary, None);
            Some(
                gh.upsert_sticky_comment(repo, number, render::COMMENT_MARKER, &body)
                    .await?
                    .id,
            )
        }
        _ => None,
    };
    result["github"] = json!({
        "check_run_id": check_run_id,
        "comment_id": comment_id,
        "tree": tree,
        "config_problems": problems,
    });
    Ok(result)
}

async fn ci_gen(gh: &Installation, job: &Job, state: &WorkerState) -> Result<Value, JobError> {
    let Target {
        repo,
        default_branch,
        sha,
        config,
        problems,
    } = match target(gh, job, |c| c.features.ci_gen).await? {
        Ok(t) => t,
        Err(skipped) => return Ok(skipped),
    };
    let (dir, tree) = checkout(gh, repo, &sha, state).await?;
    let local = local_copy(job, dir.path(), &sha);
    let mut result = super::ci_gen::run(&local, &state.analyze, state.router.as_ref(), &state.db).await?;
    drop(dir);
    result["source"] = source(job, Some(&sha));
    let workflow = result["workflow"].clone();
    let path = workflow["path"].as_str().unwrap_or(".github/workflows/autodevops.yml");
    let mut content = workflow["content"].as_str().unwrap_or_default().to_owned();
    if let Some(runner) = &config.ci.runs_on {
        // A JSON string is a valid YAML scalar: the configured label cannot break the file.
        content = content.replace("runs-on: ubuntu-latest", &format!("runs-on: {}", json!(runner)));
        result["workflow"]["content"] = json!(content);
    }
    let branch = config.ci.branch.clone().unwrap_or_else(|| CI_BRANCH.to_owned());
    let pr = gh
        .upsert_file_pull_request(&FilePr {
            repo: repo.to_owned(),
            base_branch: default_branch,
            branch,
            path: path.to_owned(),
            content,
            commit_message: format!("ci: AutoDevOps workflow for {}", &sha[..sha.len().min(7)]),
            title: "Add a CI workflow (AutoDevOps)".to_owned(),
            body: render::ci_pr_body(path, &sha, &result),
        })
        .await?;
    result["github"] = json!({
        "pull_request": pr.number,
        "url": pr.html_url,
        "created": pr.created,
        "committed": pr.committed,
        "tree": tree,
        "config_problems": problems,
    });
    Ok(result)
}

/// Whether this worker still holds the job (it was not cancelled or superseded meanwhile).
async fn still_ours(job: &Job, state: &WorkerState) -> bool {
    match jobs::get(&state.db.conn, &job.id, None).await {
        Ok(Some(row)) => {
            row.status == JobStatus::Running.as_str() && row.locked_by.as_deref() == Some(&state.worker_id)
        }
        _ => true, // the database hiccuped: report; the fenced finish decides
    }
}

/// After a GitHub job ended without success: its check run is completed — as failure with the
/// reason when the job is dead, as neutral with a pointer to the newer job when it was
/// superseded — and never left in progress.
/// A job of a draft pull request's push (see `shared::webhook::Trigger::PullRequest`).
fn is_draft(job: &Job) -> bool {
    job.trigger
        .as_ref()
        .and_then(|t| t.get("draft"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The job's check run on `sha`: the one an earlier attempt created (found by the job id as its
/// external id: that attempt may have stopped before it could record the id), else a new one.
async fn check_run(gh: &Installation, repo: &str, sha: &str, job_id: &str) -> Result<i64, GithubError> {
    match gh.find_check_run(repo, sha, CHECK_NAME, job_id).await? {
        Some(id) => {
            tracing::info!(check_run_id = id, "reusing the check run of an earlier attempt");
            Ok(id)
        }
        None => gh.create_check_run(repo, sha, CHECK_NAME, job_id).await,
    }
}

pub(crate) async fn close_check_run(state: &WorkerState, job_id: &str) {
    let (Some(app), Ok(Some(job))) = (state.github.as_ref(), jobs::get(&state.db.conn, job_id, None).await) else {
        return;
    };
    let (Some(installation_id), Some(check_run_id), Some(repo)) = (job.installation_id, job.check_run_id, &job.repo)
    else {
        return;
    };
    let status = job.status.parse::<JobStatus>().ok();
    let conclusion = match status {
        Some(JobStatus::Dead) => CheckConclusion {
            conclusion: "failure".into(),
            title: "AutoDevOps could not finish".into(),
            summary: format!(
                "The analysis failed: {}",
                job.error.as_deref().unwrap_or("unknown error")
            ),
            text: None,
        },
        Some(JobStatus::Cancelled) => CheckConclusion {
            conclusion: "neutral".into(),
            title: "Superseded by a newer commit".into(),
            summary: format!(
                "A newer commit is being analysed instead (job {}).",
                job.superseded_by.as_deref().unwrap_or("-")
            ),
            text: None,
        },
        _ => return,
    };
    let gh = app.installation(installation_id);
    if let Err(e) = gh.complete_check_run(repo, check_run_id, &conclusion, &[]).await {
        tracing::warn!(job_id, error = %e, "could not complete the check run");
    }
}
