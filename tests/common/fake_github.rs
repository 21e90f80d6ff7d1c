//! A stateful, in-memory fake of GitHub's REST API served by wiremock, for end-to-end tests.
//!
//! Requests and responses use GitHub's paths, field names and status codes. The fake keeps
//! installations, repositories (branches, commits, trees, blobs), pull requests, check runs,
//! comments and webhook deliveries, and lets tests inject failures and expire tokens.
#![allow(dead_code)]

mod app;
mod checks;
mod comments;
mod contents;
mod git;
mod gitdata;
mod http;
mod pulls;
mod repos;
mod state;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use regex::Regex;
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

pub use git::TreeEntry;
use state::{FailureRule, HookDelivery, Repo, State};

/// The login of comments the fake's app posts.
pub const BOT_LOGIN: &str = "autodevops[bot]";

/// A check run as the fake stores it.
#[derive(Clone, Debug)]
pub struct CheckRun {
    pub id: i64,
    pub head_sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    /// Annotations received over all requests.
    pub annotations_count: usize,
    pub annotations: Vec<Value>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

/// An issue (pull request) comment.
#[derive(Clone, Debug)]
pub struct Comment {
    pub id: i64,
    pub issue: i64,
    pub body: String,
    /// Author login; the app's own comments are by [`BOT_LOGIN`].
    pub user: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A pull request; its head and base shas are the branches' current heads.
#[derive(Clone, Debug)]
pub struct Pull {
    pub number: i64,
    pub head_ref: String,
    pub base_ref: String,
    pub title: String,
    pub body: Option<String>,
    /// "open" or "closed".
    pub state: String,
    pub draft: bool,
}

pub struct FakeGithub {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::new()));
        let responder = http::Responder {
            state: state.clone(),
            base: server.uri(),
        };
        Mock::given(any()).respond_with(responder).mount(&server).await;
        FakeGithub { server, state }
    }

    /// The API base URL (what `GITHUB_API_URL` is set to), without a trailing slash.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    fn st(&self) -> MutexGuard<'_, State> {
        http::lock(&self.state)
    }

    pub fn add_installation(&self, id: i64, account: &str) {
        self.st().installations.insert(id, account.to_string());
    }

    /// Adds an empty private repository to `installation`; returns its id.
    pub fn add_repo(&self, installation: i64, full_name: &str, default_branch: &str) -> i64 {
        let mut st = self.st();
        assert!(
            st.installations.contains_key(&installation),
            "fake GitHub: no installation {installation}; call add_installation first"
        );
        let id = st.ids.next();
        st.repos.insert(
            full_name.to_lowercase(),
            Repo::new(id, installation, full_name, default_branch),
        );
        id
    }

    /// Sets a repository's visibility, archived flag and primary language.
    pub fn set_repo_details(&self, repo: &str, private: bool, archived: bool, language: Option<&str>) {
        let mut st = self.st();
        let r = st.repo_mut(repo);
        r.private = private;
        r.archived = archived;
        r.language = language.map(str::to_string);
    }

    /// Sets `user`'s permission on `repo` (admin, maintain, write, triage or read).
    pub fn set_permission(&self, repo: &str, user: &str, permission: &str) {
        self.st()
            .repo_mut(repo)
            .permissions
            .insert(user.to_lowercase(), permission.to_string());
    }

    /// Commits the full snapshot `files` (path → content) on `branch` and moves the branch
    /// there. A new branch starts from the default branch's head. Returns the commit sha.
    pub fn commit(&self, repo: &str, branch: &str, files: &[(&str, &str)]) -> String {
        let entries: Vec<TreeEntry> = files
            .iter()
            .map(|(p, c)| TreeEntry::File {
                path: p.to_string(),
                content: c.to_string(),
            })
            .collect();
        self.commit_raw(repo, branch, &entries)
    }

    /// Like [`commit`](Self::commit) with executables, symlinks and submodules too.
    pub fn commit_raw(&self, repo: &str, branch: &str, entries: &[TreeEntry]) -> String {
        let mut st = self.st();
        st.ids.commits += 1;
        let seq = st.ids.commits;
        let r = st.repo_mut(repo);
        let files = r.entries(entries);
        r.make_commit(branch, files, &format!("Test commit {seq}"), seq)
    }

    /// Opens pull request `number` from `head_branch` into `base` (both must exist).
    pub fn open_pull(&self, repo: &str, number: i64, head_branch: &str, base: &str) {
        let mut st = self.st();
        let r = st.repo_mut(repo);
        for b in [head_branch, base] {
            assert!(
                r.branches.contains_key(b),
                "fake GitHub: no branch {b} in {repo}; commit first"
            );
        }
        r.pulls.insert(
            number,
            Pull {
                number,
                head_ref: head_branch.to_string(),
                base_ref: base.to_string(),
                title: format!("Pull request #{number}"),
                body: None,
                state: "open".to_string(),
                draft: false,
            },
        );
        r.next_number = r.next_number.max(number + 1);
    }

    /// Adds a comment by `user` (e.g. a human, or [`BOT_LOGIN`]) to pull request `issue`;
    /// not counted by [`comment_posts`](Self::comment_posts). Returns its id.
    pub fn add_comment(&self, repo: &str, issue: i64, user: &str, body: &str) -> i64 {
        let mut st = self.st();
        let id = st.ids.next();
        let now = http::now_rfc3339();
        st.repo_mut(repo).comments.push(Comment {
            id,
            issue,
            body: body.to_string(),
            user: user.to_string(),
            created_at: now.clone(),
            updated_at: now,
        });
        id
    }

    /// The next `responses.len()` requests whose path matches `path_regex` get these statuses
    /// (with a `Retry-After` when given) before normal service resumes. A 403/429 with a
    /// retry-after is a secondary rate limit; without one, a primary rate limit.
    pub fn set_failures(&self, path_regex: &str, responses: Vec<(u16, Option<u64>)>) {
        let regex = Regex::new(path_regex).expect("fake GitHub: invalid failure path regex");
        self.st().failures.push(FailureRule {
            regex,
            queue: VecDeque::from(responses),
            method: None,
            after_handling: false,
        });
    }

    /// The next `n` `method` requests whose path matches `path_regex` are carried out, but
    /// answered 502: GitHub acted and the answer was lost on the way back.
    pub fn set_lost_answers(&self, method: &str, path_regex: &str, n: usize) {
        let regex = Regex::new(path_regex).expect("fake GitHub: invalid failure path regex");
        self.st().failures.push(FailureRule {
            regex,
            queue: std::iter::repeat_n((502, None), n).collect(),
            method: Some(method.to_owned()),
            after_handling: true,
        });
    }

    /// Every installation token issued so far now answers 401 "Bad credentials".
    pub fn expire_tokens(&self) {
        for t in self.st().tokens.values_mut() {
            t.expired = true;
        }
    }

    /// Records a webhook delivery the app's hook history lists.
    pub fn add_hook_delivery(&self, id: i64, guid: &str, event: &str, status_code: i64) {
        self.st().deliveries.push(HookDelivery {
            id,
            guid: guid.to_string(),
            event: event.to_string(),
            status_code,
            redelivery: false,
            delivered_at: http::now_rfc3339(),
        });
    }

    pub fn check_runs(&self, repo: &str) -> Vec<CheckRun> {
        self.st().repo(repo).map(|r| r.check_runs.clone()).unwrap_or_default()
    }

    /// Comments on `issue`, oldest first.
    pub fn comments(&self, repo: &str, issue: i64) -> Vec<Comment> {
        let st = self.st();
        let Some(r) = st.repo(repo) else { return Vec::new() };
        r.comments.iter().filter(|c| c.issue == issue).cloned().collect()
    }

    /// Number of comments created through the API.
    pub fn comment_posts(&self) -> usize {
        self.st().comment_posts
    }

    /// Pull requests by number.
    pub fn pulls(&self, repo: &str) -> Vec<Pull> {
        self.st()
            .repo(repo)
            .map(|r| r.pulls.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn file_on_branch(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let st = self.st();
        let r = st.repo(repo)?;
        let commit = r.commits.get(r.branches.get(branch)?)?;
        r.blob_at(commit, path).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn branch_head(&self, repo: &str, branch: &str) -> Option<String> {
        self.st().repo(repo)?.branches.get(branch).cloned()
    }

    /// Number of installation tokens issued.
    pub fn token_exchanges(&self) -> usize {
        self.st().token_exchanges
    }

    /// Ids of the deliveries redelivery was requested for, in order.
    pub fn redelivered(&self) -> Vec<i64> {
        self.st().redelivered.clone()
    }

    /// Every request received, in order, as (method, path without query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.st().requests.clone()
    }
}
