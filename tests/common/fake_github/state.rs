//! The fake's in-memory state: installations, repositories with their git objects, and the
//! records tests inspect.

use std::collections::{BTreeMap, HashMap, VecDeque};

use regex::Regex;

use super::git::Commit;
use super::{CheckRun, Comment, Pull};

/// Requests allowed per hour, as GitHub grants an installation.
pub(super) const RATE_LIMIT: i64 = 5000;

pub(super) struct State {
    pub installations: BTreeMap<i64, String>,
    /// Keyed by the lower-cased full name: GitHub's names are case-insensitive.
    pub repos: BTreeMap<String, Repo>,
    pub tokens: HashMap<String, Token>,
    pub token_exchanges: usize,
    pub failures: Vec<FailureRule>,
    pub deliveries: Vec<HookDelivery>,
    pub redelivered: Vec<i64>,
    pub requests: Vec<(String, String)>,
    pub comment_posts: usize,
    pub ids: Ids,
    pub rate_remaining: i64,
    pub rate_reset: i64,
}

impl State {
    pub fn new() -> State {
        State {
            installations: BTreeMap::new(),
            repos: BTreeMap::new(),
            tokens: HashMap::new(),
            token_exchanges: 0,
            failures: Vec::new(),
            deliveries: Vec::new(),
            redelivered: Vec::new(),
            requests: Vec::new(),
            comment_posts: 0,
            ids: Ids { next: 1000, commits: 0 },
            rate_remaining: RATE_LIMIT,
            rate_reset: chrono::Utc::now().timestamp() + 3600,
        }
    }

    /// The repository named `full_name`; panics with a clear message in test setup mistakes.
    pub fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos
            .get_mut(&full_name.to_lowercase())
            .unwrap_or_else(|| panic!("fake GitHub: no repository {full_name}; call add_repo first"))
    }

    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_lowercase())
    }
}

/// Id sources shared by all repositories.
pub(super) struct Ids {
    pub next: i64,
    /// Mixed into commit hashes so two identical snapshots still get distinct commits.
    pub commits: u64,
}

impl Ids {
    pub fn next(&mut self) -> i64 {
        self.next += 1;
        self.next
    }
}

pub(super) struct Token {
    pub installation: i64,
    pub expired: bool,
}

/// Statuses to answer, in order, to requests whose path matches `regex`.
pub(super) struct FailureRule {
    pub regex: Regex,
    pub queue: VecDeque<(u16, Option<u64>)>,
    /// Only requests of this method (any when `None`).
    pub method: Option<String>,
    /// The request is carried out first, then its answer replaced: GitHub acted, but the
    /// client never learns it (a lost response, a gateway timeout).
    pub after_handling: bool,
}

pub(super) struct HookDelivery {
    pub id: i64,
    pub guid: String,
    pub event: String,
    pub status_code: i64,
    pub redelivery: bool,
    pub delivered_at: String,
}

pub(super) struct Repo {
    pub id: i64,
    pub installation: i64,
    pub owner: String,
    pub name: String,
    pub full_name: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
    pub language: Option<String>,
    /// Branch name → commit sha.
    pub branches: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    /// Blob sha → content.
    pub blobs: HashMap<String, Vec<u8>>,
    pub pulls: BTreeMap<i64, Pull>,
    pub next_number: i64,
    pub check_runs: Vec<CheckRun>,
    pub comments: Vec<Comment>,
    /// Collaborator login → permission (admin, maintain, write, triage, read).
    pub permissions: HashMap<String, String>,
}

impl Repo {
    pub fn new(id: i64, installation: i64, full_name: &str, default_branch: &str) -> Repo {
        let (owner, name) = full_name
            .split_once('/')
            .unwrap_or_else(|| panic!("fake GitHub: repository name {full_name} is not owner/name"));
        Repo {
            id,
            installation,
            owner: owner.to_string(),
            name: name.to_string(),
            full_name: full_name.to_string(),
            default_branch: default_branch.to_string(),
            private: true,
            archived: false,
            language: None,
            branches: BTreeMap::new(),
            commits: HashMap::new(),
            blobs: HashMap::new(),
            pulls: BTreeMap::new(),
            next_number: 1,
            check_runs: Vec::new(),
            comments: Vec::new(),
            permissions: HashMap::new(),
        }
    }

    /// A commit named by a branch (`main`, `heads/main`, `refs/heads/main`) or by its sha
    /// (full, or an unambiguous prefix of at least 7 hex digits).
    pub fn resolve(&self, reference: &str) -> Option<&Commit> {
        let branch = reference
            .strip_prefix("refs/heads/")
            .or_else(|| reference.strip_prefix("heads/"))
            .unwrap_or(reference);
        if let Some(sha) = self.branches.get(branch) {
            return self.commits.get(sha);
        }
        if let Some(c) = self.commits.get(reference) {
            return Some(c);
        }
        if reference.len() >= 7 && reference.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut found = self.commits.values().filter(|c| c.sha.starts_with(reference));
            let first = found.next();
            if found.next().is_none() {
                return first;
            }
        }
        None
    }

    /// Whether `ancestor` is `descendant` or reachable from it through parents.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        let mut stack = vec![descendant.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(sha) = stack.pop() {
            if sha == ancestor {
                return true;
            }
            if seen.insert(sha.clone())
                && let Some(c) = self.commits.get(&sha)
            {
                stack.extend(c.parents.iter().cloned());
            }
        }
        false
    }

    pub fn html_url(&self) -> String {
        format!("https://github.com/{}", self.full_name)
    }
}
