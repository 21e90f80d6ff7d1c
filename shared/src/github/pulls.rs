//! Proposing one file through a pull request from a dedicated branch, idempotently.

use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{GithubError, Installation, urls};

/// A file to propose: written on `branch` (created from `base_branch` when missing) and
/// offered by one pull request `branch` → `base_branch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePr {
    pub repo: String,
    pub base_branch: String,
    /// e.g. `autodevops/ci`; never the base branch.
    pub branch: String,
    pub path: String,
    pub content: String,
    pub commit_message: String,
    pub title: String,
    pub body: String,
}

/// The pull request after an upsert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrOutcome {
    pub number: i64,
    pub html_url: String,
    /// `true` when this call opened the pull request.
    pub created: bool,
    /// `true` when this call committed the file (false: the branch already had it).
    pub committed: bool,
}

#[derive(Deserialize)]
struct GitRef {
    object: GitObject,
}

#[derive(Deserialize)]
struct GitObject {
    sha: String,
}

#[derive(Deserialize)]
struct PullRequest {
    number: i64,
    html_url: String,
}

impl Installation {
    /// Puts `req.path` on `req.branch` and opens (or updates) the one pull request for it.
    pub async fn upsert_file_pull_request(&self, req: &FilePr) -> Result<PrOutcome, GithubError> {
        let repo = urls::repo(&req.repo)?;
        if req.branch.trim().is_empty() || req.branch == req.base_branch {
            return Err(GithubError::InvalidInput(format!(
                "refusing to push to {:?}: the PR branch must differ from the base branch",
                req.branch
            )));
        }
        let branch_path = urls::segments("branch", &req.branch)?;
        let base_path = urls::segments("branch", &req.base_branch)?;
        let owner = repo.split_once('/').map(|(o, _)| o).unwrap_or_default();

        // 1. The open pull request of the branch, if any.
        let open = self.open_pull_request(&repo, owner, req).await?;

        // 2. The branch: created from the base head when missing; reset to it when no pull
        //    request is open (left over from a merged or closed one).
        let ref_url = self.app.url(&format!("repos/{repo}/git/ref/heads/{branch_path}"))?;
        let existing_ref = self.get_optional::<GitRef>(ref_url).await?;
        if existing_ref.is_none() || open.is_none() {
            let base_url = self.app.url(&format!("repos/{repo}/git/ref/heads/{base_path}"))?;
            let base: GitRef = self.get_json(base_url).await?;
            match existing_ref {
                None => {
                    let refs_url = self.app.url(&format!("repos/{repo}/git/refs"))?;
                    let body = json!({ "ref": format!("refs/heads/{}", req.branch), "sha": base.object.sha });
                    match self.write::<serde_json::Value>(Method::POST, refs_url, body).await {
                        Ok(_) => tracing::info!(repo, branch = %req.branch, "branch created"),
                        // Created meanwhile by another run: use it.
                        Err(e) if e.status() == Some(422) => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(r) if r.object.sha != base.object.sha => {
                    let url = self.app.url(&format!("repos/{repo}/git/refs/heads/{branch_path}"))?;
                    let body = json!({ "sha": base.object.sha, "force": true });
                    let _: serde_json::Value = self.write(Method::PATCH, url, body).await?;
                    tracing::info!(repo, branch = %req.branch, "stale branch reset to the base head");
                }
                Some(_) => {}
            }
        }

        // 3. The file on the branch, unless it is already there unchanged.
        let existing = self.file_at(&repo, &req.path, Some(&req.branch)).await?;
        let committed = match &existing {
            Some(f) if f.bytes == req.content.as_bytes() => false,
            _ => {
                let url = self
                    .app
                    .url(&format!("repos/{repo}/contents/{}", urls::segments("path", &req.path)?))?;
                let mut body = json!({
                    "message": req.commit_message,
                    "content": base64::engine::general_purpose::STANDARD.encode(&req.content),
                    "branch": req.branch,
                });
                if let Some(f) = &existing {
                    body["sha"] = json!(f.sha);
                }
                let _: serde_json::Value = self.write(Method::PUT, url, body).await?;
                true
            }
        };

        // 4. The one pull request: updated, or opened.
        if let Some(pr) = open {
            let url = self.app.url(&format!("repos/{repo}/pulls/{}", pr.number))?;
            let updated: PullRequest = self
                .write(Method::PATCH, url, json!({ "title": req.title, "body": req.body }))
                .await?;
            return Ok(PrOutcome {
                number: updated.number,
                html_url: updated.html_url,
                created: false,
                committed,
            });
        }
        let url = self.app.url(&format!("repos/{repo}/pulls"))?;
        let body = json!({
            "title": req.title,
            "body": req.body,
            "head": req.branch,
            "base": req.base_branch,
        });
        let pr = match self.create::<PullRequest>(url, body).await {
            Ok(pr) => pr,
            // GitHub may have opened it: the answer was lost. Found, it is ours; else the
            // job's next attempt opens it.
            Err(e) if e.may_have_acted() => match self.open_pull_request(&repo, owner, req).await? {
                Some(pr) => pr,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        Ok(PrOutcome {
            number: pr.number,
            html_url: pr.html_url,
            created: true,
            committed,
        })
    }

    /// The open pull request from `req.branch` into `req.base_branch`, if any.
    async fn open_pull_request(
        &self,
        repo: &str,
        owner: &str,
        req: &FilePr,
    ) -> Result<Option<PullRequest>, GithubError> {
        let mut list = self.app.url(&format!("repos/{repo}/pulls"))?;
        list.query_pairs_mut()
            .append_pair("head", &format!("{owner}:{}", req.branch))
            .append_pair("state", "open")
            .append_pair("base", &req.base_branch);
        Ok(self.get_json::<Vec<PullRequest>>(list).await?.into_iter().next())
    }
}
