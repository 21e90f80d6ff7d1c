//! Git objects of the fake: blobs, trees and commits hashed as git hashes them, tree
//! listings as the trees API returns them, and a small line diff for pull request files.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::state::Repo;

/// One entry of a commit snapshot, for `FakeGithub::commit_raw`.
#[derive(Clone, Debug)]
pub enum TreeEntry {
    /// A regular file (mode 100644).
    File { path: String, content: String },
    /// An executable file (mode 100755).
    Executable { path: String, content: String },
    /// A symbolic link (mode 120000) whose blob is the link target.
    Symlink { path: String, target: String },
    /// A submodule (mode 160000, type "commit") pinned at `sha`.
    Submodule { path: String, sha: String },
}

/// A path in a commit's tree: its mode and the sha of its blob (or submodule commit).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub mode: &'static str,
    pub sha: String,
}

impl Entry {
    pub fn kind(&self) -> &'static str {
        if self.mode == "160000" { "commit" } else { "blob" }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Commit {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    pub files: BTreeMap<String, Entry>,
    /// Directory path ("" for the root) → tree sha.
    pub dirs: BTreeMap<String, String>,
}

/// The git object id of `body` stored as an object of type `kind`.
pub(super) fn object_id(kind: &str, body: &[u8]) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(body);
    h.hexdigest()
}

pub(super) fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).hexdigest()
}

/// Base64 wrapped at 60 characters a line, each line ending in a newline, as GitHub sends
/// blob and file contents.
pub(super) fn base64_wrapped(bytes: &[u8]) -> String {
    let flat = STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for chunk in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// Decodes base64 that may contain line breaks.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

impl Repo {
    /// Stores `content` as a blob and returns its sha.
    pub fn put_blob(&mut self, content: &[u8]) -> String {
        let sha = object_id("blob", content);
        self.blobs.entry(sha.clone()).or_insert_with(|| content.to_vec());
        sha
    }

    /// Builds an entry map from test-supplied snapshot entries, storing their blobs.
    pub fn entries(&mut self, entries: &[TreeEntry]) -> BTreeMap<String, Entry> {
        let mut files = BTreeMap::new();
        for e in entries {
            let (path, entry) = match e {
                TreeEntry::File { path, content } => (
                    path,
                    Entry {
                        mode: "100644",
                        sha: self.put_blob(content.as_bytes()),
                    },
                ),
                TreeEntry::Executable { path, content } => (
                    path,
                    Entry {
                        mode: "100755",
                        sha: self.put_blob(content.as_bytes()),
                    },
                ),
                TreeEntry::Symlink { path, target } => (
                    path,
                    Entry {
                        mode: "120000",
                        sha: self.put_blob(target.as_bytes()),
                    },
                ),
                TreeEntry::Submodule { path, sha } => (
                    path,
                    Entry {
                        mode: "160000",
                        sha: sha.clone(),
                    },
                ),
            };
            files.insert(path.trim_matches('/').to_string(), entry);
        }
        files
    }

    /// Records a commit of the snapshot `files` on `branch` and moves the branch to it. A new
    /// branch other than the default one starts from the default branch's head.
    pub fn make_commit(&mut self, branch: &str, files: BTreeMap<String, Entry>, message: &str, seq: u64) -> String {
        let parent = self
            .branches
            .get(branch)
            .or_else(|| self.branches.get(&self.default_branch))
            .cloned();
        let mut dirs = BTreeMap::new();
        let tree = tree_id(&files, "", &mut dirs);
        let mut body = format!("tree {tree}\n");
        if let Some(p) = &parent {
            body.push_str(&format!("parent {p}\n"));
        }
        body.push_str(&format!(
            "author Fake <fake@example.com> {seq} +0000\ncommitter Fake <fake@example.com> {seq} +0000\n\n{message}\n"
        ));
        let sha = object_id("commit", body.as_bytes());
        let commit = Commit {
            sha: sha.clone(),
            tree,
            parents: parent.into_iter().collect(),
            message: message.to_string(),
            files,
            dirs,
        };
        self.commits.insert(sha.clone(), commit);
        self.branches.insert(branch.to_string(), sha.clone());
        sha
    }

    /// A commit and directory prefix whose tree has `sha`.
    pub fn find_tree(&self, sha: &str) -> Option<(&Commit, String)> {
        self.commits.values().find_map(|c| {
            c.dirs
                .iter()
                .find(|(_, t)| t.as_str() == sha)
                .map(|(dir, _)| (c, dir.clone()))
        })
    }

    /// The content of `path` in `commit`, if it is a blob.
    pub fn blob_at(&self, commit: &Commit, path: &str) -> Option<&[u8]> {
        let e = commit.files.get(path)?;
        if e.kind() != "blob" {
            return None;
        }
        self.blobs.get(&e.sha).map(Vec::as_slice)
    }

    /// The `tree` array of GET git/trees for directory `dir` of `commit`.
    pub fn tree_items(&self, commit: &Commit, dir: &str, recursive: bool) -> Vec<Value> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut items: Vec<(String, Value)> = Vec::new();
        for (path, sha) in &commit.dirs {
            let Some(rel) = path.strip_prefix(&prefix) else {
                continue;
            };
            if path.is_empty() || rel.is_empty() || (!recursive && rel.contains('/')) {
                continue;
            }
            items.push((
                rel.to_string(),
                json!({"path": rel, "mode": "040000", "type": "tree", "sha": sha}),
            ));
        }
        for (path, e) in &commit.files {
            let Some(rel) = path.strip_prefix(&prefix) else {
                continue;
            };
            if !recursive && rel.contains('/') {
                continue;
            }
            let mut item = json!({"path": rel, "mode": e.mode, "type": e.kind(), "sha": e.sha});
            if e.kind() == "blob" {
                item["size"] = json!(self.blobs.get(&e.sha).map_or(0, Vec::len));
            }
            items.push((rel.to_string(), item));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.into_iter().map(|(_, v)| v).collect()
    }
}

/// The tree id of directory `dir` within `files`, recording every subdirectory's id in `dirs`.
fn tree_id(files: &BTreeMap<String, Entry>, dir: &str, dirs: &mut BTreeMap<String, String>) -> String {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut children: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (path, e) in files.range(prefix.clone()..) {
        let Some(rel) = path.strip_prefix(&prefix) else { break };
        match rel.split_once('/') {
            None => {
                children.insert(rel.to_string(), (e.mode.to_string(), e.sha.clone()));
            }
            Some((sub, _)) if !children.contains_key(sub) => {
                let sub_path = format!("{prefix}{sub}");
                let id = tree_id(files, &sub_path, dirs);
                children.insert(sub.to_string(), ("40000".to_string(), id));
            }
            Some(_) => {}
        }
    }
    let mut body = Vec::new();
    for (name, (mode, sha)) in &children {
        body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        body.extend(hex_bytes(sha));
    }
    let id = object_id("tree", &body);
    dirs.insert(dir.to_string(), id.clone());
    id
}

fn hex_bytes(sha: &str) -> Vec<u8> {
    (0..sha.len() / 2)
        .filter_map(|i| u8::from_str_radix(sha.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Additions, deletions and a one-hunk unified patch turning `old` into `new` (the changed
/// middle between the common leading and trailing lines).
pub(super) fn line_diff(old: &str, new: &str) -> (usize, usize, String) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suf = a.len().min(b.len()) - pre;
    let suf = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suf)
        .take_while(|(x, y)| x == y)
        .count();
    let removed = &a[pre..a.len() - suf];
    let added = &b[pre..b.len() - suf];
    if removed.is_empty() && added.is_empty() {
        return (0, 0, String::new());
    }
    let start = |len: usize| if len == 0 { pre } else { pre + 1 };
    let mut patch = format!(
        "@@ -{},{} +{},{} @@",
        start(removed.len()),
        removed.len(),
        start(added.len()),
        added.len()
    );
    for l in removed {
        patch.push_str(&format!("\n-{l}"));
    }
    for l in added {
        patch.push_str(&format!("\n+{l}"));
    }
    (added.len(), removed.len(), patch)
}
