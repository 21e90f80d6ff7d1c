//! Domain types shared by the API and the workers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a job does; each kind has its own queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Analysis,
    Sync,
    CiGen,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Analysis, JobKind::Sync, JobKind::CiGen];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Analysis => "analysis",
            JobKind::Sync => "sync",
            JobKind::CiGen => "ci_gen",
        }
    }

    /// The queue a kind runs on (without the deployment's prefix).
    pub fn queue(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind {s:?}: expected one of analysis, sync, ci_gen"))
    }
}

/// Lifecycle of a job row (the source of truth; the queue only moves work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Dead,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Retrying,
        JobStatus::Succeeded,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown status {s:?}: expected one of queued, running, retrying, succeeded, dead, cancelled")
        })
    }
}

/// A GitHub repository name, `owner/name`, validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The account (user or organisation) the repository belongs to.
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map_or(self.0.as_str(), |(owner, _)| owner)
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match s.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(RepoName(s)),
            _ => Err(format!("{s:?} is not a repository name of the form owner/name")),
        }
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.0
    }
}

/// What a job works on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSource {
    /// A GitHub repository (arrives with the GitHub App integration).
    Repo { repo: RepoName, git_ref: Option<String> },
    /// A checkout on the worker's filesystem.
    Path { path: String },
    /// Every repository of a GitHub App installation (installation-wide `sync`).
    Installation,
}

/// What a job is about on GitHub: set for jobs that webhooks (or GitHub-backed REST calls)
/// create, and used by the worker to fetch content and report back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubTarget {
    pub installation_id: i64,
    /// The commit to work on; `None` for the default branch's head (or a PR's current head).
    pub head_sha: Option<String>,
    pub pr_number: Option<i64>,
    /// What triggered the job (`{"event", "action", "actor", "command"…}`), kept for the record.
    pub trigger: serde_json::Value,
    pub delivery_id: Option<String>,
}

/// The message carried by a queue: only the job id; the row holds everything else, so a
/// message can be pushed twice (relay, crash recovery) without running the job twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
        }
        assert!(
            "build"
                .parse::<JobKind>()
                .unwrap_err()
                .contains("analysis, sync, ci_gen")
        );
    }

    #[test]
    fn repo_names_are_validated() {
        assert!(RepoName::try_from("octo-org/hello.world".to_owned()).is_ok());
        for bad in ["", "noslash", "a/b/c", "/x", "x/", "a b/c", "../x"] {
            assert!(RepoName::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
