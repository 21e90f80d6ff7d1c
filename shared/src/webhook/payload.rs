//! The parts of GitHub webhook payloads that routing reads. Unknown fields are ignored.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

/// A delivery's JSON, read into the typed parts routing needs. The webhook handler hands the
/// raw body (`[u8]`): each part is read straight from the bytes, skipping the rest, with no
/// tree of the whole payload built. Tests hand a [`Value`].
pub trait Payload {
    fn read<T: DeserializeOwned>(&self) -> serde_json::Result<T>;
}

impl Payload for [u8] {
    fn read<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(self)
    }
}

impl Payload for Value {
    fn read<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(self)
    }
}

/// A user, bot or organisation (`sender`, `comment.user`).
#[derive(Debug, Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Account {
    pub fn is_bot(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Deserialize)]
pub struct InstallationRef {
    pub id: i64,
}

#[derive(Debug, Deserialize)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// Fields every event may carry.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    #[serde(default)]
    pub repository: Option<Repository>,
    #[serde(default)]
    pub sender: Option<Account>,
}

#[derive(Debug, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    pub pull_request: PullRequest,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest {
    pub number: i64,
    #[serde(default)]
    pub draft: bool,
    pub head: Head,
}

#[derive(Debug, Deserialize)]
pub struct Head {
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub struct IssueCommentEvent {
    pub issue: Issue,
    pub comment: Comment,
}

#[derive(Debug, Deserialize)]
pub struct Issue {
    pub number: i64,
    /// Present (an object of links) only when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub struct Comment {
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub author_association: Option<String>,
    #[serde(default)]
    pub user: Option<Account>,
}

#[derive(Debug, Deserialize)]
pub struct CheckRunEvent {
    pub check_run: CheckRun,
}

#[derive(Debug, Deserialize)]
pub struct CheckRun {
    pub head_sha: String,
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(default)]
    pub check_suite: Option<CheckSuite>,
    #[serde(default)]
    pub app: Option<App>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestRef {
    pub number: i64,
}

#[derive(Debug, Deserialize)]
pub struct CheckSuite {
    #[serde(default)]
    pub head_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct App {
    #[serde(default)]
    pub slug: Option<String>,
}
