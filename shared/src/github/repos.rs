//! Repository calls on an installation: repositories, file contents, PR files, permissions.

use base64::Engine;
use serde::Deserialize;

use super::{GithubError, Installation, urls};

/// A repository the installation can reach.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RepoInfo {
    pub id: i64,
    pub full_name: String,
    pub default_branch: String,
    pub archived: bool,
    pub private: bool,
    pub language: Option<String>,
}

/// One file of a pull request's diff.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PrFile {
    pub filename: String,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed`, `unchanged`.
    pub status: String,
    pub additions: i64,
    pub deletions: i64,
    /// Absent for binary or very large diffs.
    pub patch: Option<String>,
}

/// The contents API's answer for one path.
#[derive(Deserialize)]
struct ContentEntry {
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

/// A file read through the contents API: its blob sha and bytes.
pub(crate) struct FileAt {
    pub(crate) sha: String,
    pub(crate) bytes: Vec<u8>,
}

/// Decodes GitHub's base64 (wrapped at 60 columns with `\n`).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, GithubError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| GithubError::Decode(format!("bad base64 content: {e}")))
}

impl Installation {
    /// Every repository of the installation (all pages).
    pub async fn list_repositories(&self) -> Result<Vec<RepoInfo>, GithubError> {
        let mut url = self.app.url("installation/repositories")?;
        url.query_pairs_mut().append_pair("per_page", "100");
        self.paginate(url, Some("repositories")).await
    }

    /// One repository, `owner/name`.
    pub async fn get_repository(&self, repo: &str) -> Result<RepoInfo, GithubError> {
        let url = self.app.url(&format!("repos/{}", urls::repo(repo)?))?;
        self.get_json(url).await
    }

    /// A text file at `git_ref` (branch, tag or sha); `None` when it does not exist.
    pub async fn get_file(&self, repo: &str, path: &str, git_ref: &str) -> Result<Option<String>, GithubError> {
        match self.file_at(repo, path, Some(git_ref)).await? {
            None => Ok(None),
            Some(f) => String::from_utf8(f.bytes)
                .map(Some)
                .map_err(|_| GithubError::Decode(format!("{path} is not UTF-8 text"))),
        }
    }

    /// A file's sha and bytes through the contents API; `None` on 404.
    pub(crate) async fn file_at(
        &self,
        repo: &str,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<FileAt>, GithubError> {
        let mut url = self.app.url(&format!(
            "repos/{}/contents/{}",
            urls::repo(repo)?,
            urls::segments("path", path)?
        ))?;
        if let Some(r) = git_ref {
            url.query_pairs_mut().append_pair("ref", r);
        }
        let Some(value) = self.get_optional::<serde_json::Value>(url).await? else {
            return Ok(None);
        };
        if value.is_array() {
            return Err(GithubError::Decode(format!("{path} is a directory")));
        }
        let entry: ContentEntry = serde_json::from_value(value).map_err(|e| GithubError::Decode(e.to_string()))?;
        if entry.kind != "file" {
            return Err(GithubError::Decode(format!("{path} is a {}, not a file", entry.kind)));
        }
        match (entry.encoding.as_deref(), entry.content.as_deref()) {
            (Some("base64"), Some(text)) => Ok(Some(FileAt {
                sha: entry.sha,
                bytes: decode_base64(text)?,
            })),
            // Files over 1 MB come back with encoding "none" and no content.
            _ => Err(GithubError::TooLarge(format!(
                "{path} is too large for the contents API"
            ))),
        }
    }

    /// The files of pull request `number` (all pages).
    pub async fn pull_request_files(&self, repo: &str, number: i64) -> Result<Vec<PrFile>, GithubError> {
        let mut url = self
            .app
            .url(&format!("repos/{}/pulls/{number}/files", urls::repo(repo)?))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        self.paginate(url, None).await
    }

    /// `login`'s permission on `repo`: `admin`, `maintain`, `write`, `triage`, `read` or `none`.
    pub async fn collaborator_permission(&self, repo: &str, login: &str) -> Result<String, GithubError> {
        #[derive(Deserialize)]
        struct Permission {
            permission: String,
        }
        let url = self.app.url(&format!(
            "repos/{}/collaborators/{}/permission",
            urls::repo(repo)?,
            urls::segment(login)
        ))?;
        let p: Permission = self.get_json(url).await?;
        Ok(p.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wrapped_base64() {
        assert_eq!(decode_base64("aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(decode_base64("!!").is_err());
    }
}
