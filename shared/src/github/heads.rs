//! Resolving what a job works on to a commit: a pull request's head, a branch's head.

use serde::Deserialize;

use super::{GithubError, Installation, urls};

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    head: Sha,
}

#[derive(Deserialize)]
struct Ref {
    object: Sha,
}

impl Installation {
    /// The current head commit of pull request `number`.
    pub async fn pull_request_head(&self, repo: &str, number: i64) -> Result<String, GithubError> {
        let url = self.app.url(&format!("repos/{}/pulls/{number}", urls::repo(repo)?))?;
        // Uncached: a conditional GET could answer with the head of an earlier push.
        let pull: Pull = self.get_json_uncached(url).await?;
        Ok(pull.head.sha)
    }

    /// The head commit of `branch`.
    pub async fn branch_head(&self, repo: &str, branch: &str) -> Result<String, GithubError> {
        let url = self.app.url(&format!(
            "repos/{}/git/ref/heads/{}",
            urls::repo(repo)?,
            urls::segments("branch", branch)?
        ))?;
        let r: Ref = self.get_json_uncached(url).await?;
        Ok(r.object.sha)
    }
}
