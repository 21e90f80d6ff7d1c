//! One "sticky" comment per issue or pull request, found again by a hidden marker.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{GithubError, Installation, urls};

/// The comment that was updated or created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StickyComment {
    pub id: i64,
    /// `true` when this call created it.
    pub created: bool,
}

#[derive(Deserialize)]
struct IssueComment {
    id: i64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<CommentUser>,
}

#[derive(Deserialize)]
struct CommentUser {
    #[serde(rename = "type")]
    kind: String,
}

impl Installation {
    /// Updates the comment of `issue_number` that holds `marker` (e.g.
    /// `<!-- autodevops:pr-report -->`), or posts one. The body always carries the marker.
    pub async fn upsert_sticky_comment(
        &self,
        repo: &str,
        issue_number: i64,
        marker: &str,
        body: &str,
    ) -> Result<StickyComment, GithubError> {
        if marker.trim().is_empty() {
            return Err(GithubError::InvalidInput("sticky comment marker is empty".into()));
        }
        let repo = urls::repo(repo)?;
        let body = if body.contains(marker) {
            body.to_owned()
        } else {
            format!("{marker}\n{body}")
        };
        let url = self.app.url(&format!("repos/{repo}/issues/{issue_number}/comments"))?;
        if let Some(existing) = self.find_sticky(&url, issue_number, marker).await? {
            if existing.body.as_deref() != Some(body.as_str()) {
                let url = self.app.url(&format!("repos/{repo}/issues/comments/{}", existing.id))?;
                let _: serde_json::Value = self.write(Method::PATCH, url, json!({ "body": body })).await?;
            }
            return Ok(StickyComment {
                id: existing.id,
                created: false,
            });
        }
        let id = match self.create::<IssueComment>(url.clone(), json!({ "body": body })).await {
            Ok(posted) => posted.id,
            // GitHub may have posted it: the answer was lost. Found, it is ours; else the
            // job's next attempt posts it.
            Err(e) if e.may_have_acted() => match self.find_sticky(&url, issue_number, marker).await? {
                Some(found) => found.id,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        Ok(StickyComment { id, created: true })
    }

    /// The oldest comment of a bot (ours) holding `marker`: a person quoting the marker is
    /// left alone.
    async fn find_sticky(
        &self,
        comments_url: &url::Url,
        issue_number: i64,
        marker: &str,
    ) -> Result<Option<IssueComment>, GithubError> {
        let mut url = comments_url.clone();
        url.query_pairs_mut().append_pair("per_page", "100");
        let comments: Vec<IssueComment> = self.paginate(url, None).await?;
        let mut ours = comments.into_iter().filter(|c| {
            c.body.as_deref().is_some_and(|b| b.contains(marker)) && c.user.as_ref().is_none_or(|u| u.kind == "Bot")
        });
        let first = ours.next();
        let extra = ours.count();
        if extra > 0 {
            tracing::warn!(issue_number, extra, "more than one sticky comment; updating the oldest");
        }
        Ok(first)
    }
}
