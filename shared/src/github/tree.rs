//! Downloading a commit's tree into a directory through the git data API (no git binary).

use std::path::{Component, Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::repos::decode_base64;
use super::{GithubError, Installation, urls};

/// Blobs fetched at once.
const BLOB_CONCURRENCY: usize = 8;
/// Bytes inspected for a NUL to call a file binary.
const BINARY_SNIFF: usize = 8 * 1024;

/// Bounds of one tree download.
#[derive(Clone, Copy, Debug)]
pub struct TreeLimits {
    /// Larger blobs are skipped.
    pub max_file_bytes: u64,
    /// At most this many files are written.
    pub max_files: usize,
    /// At most this many bytes in all.
    pub max_total_bytes: u64,
}

impl Default for TreeLimits {
    fn default() -> Self {
        TreeLimits {
            max_file_bytes: 1024 * 1024,
            max_files: 5_000,
            max_total_bytes: 100 * 1024 * 1024,
        }
    }
}

/// What a tree download wrote and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeStats {
    pub files: usize,
    pub bytes: u64,
    pub skipped_large: usize,
    pub skipped_binary: usize,
    /// Symlinks and submodules, which are not materialised.
    pub skipped_links: usize,
    /// Entries whose path would leave the destination (`..`, absolute paths).
    pub rejected_paths: usize,
    /// Not every file was written: a limit was reached or GitHub truncated the tree.
    pub truncated: bool,
}

#[derive(Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    mode: String,
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
struct Blob {
    content: String,
    encoding: String,
}

/// `path` as a relative path of normal components, or `None` when it could escape.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// What happened to one fetched blob.
enum Fetched {
    Written(u64),
    Binary,
    Large,
}

impl Installation {
    /// Writes the files of tree `sha` of `repo` under `dest`, within `limits`.
    pub async fn download_tree(
        &self,
        repo: &str,
        sha: &str,
        dest: &Path,
        limits: &TreeLimits,
    ) -> Result<TreeStats, GithubError> {
        let repo_path = urls::repo(repo)?;
        let mut url = self
            .app
            .url(&format!("repos/{repo_path}/git/trees/{}", urls::segment(sha)))?;
        url.query_pairs_mut().append_pair("recursive", "1");
        let tree: Tree = self.get_json_uncached(url).await?;

        let mut stats = TreeStats {
            truncated: tree.truncated,
            ..TreeStats::default()
        };
        let mut selected = Vec::new();
        let mut planned_bytes = 0u64;
        for entry in tree.tree {
            if entry.kind == "commit" || entry.mode == "120000" {
                stats.skipped_links += 1;
                continue;
            }
            if entry.kind != "blob" {
                continue;
            }
            let Some(rel) = safe_relative(&entry.path) else {
                tracing::warn!(repo, path = %entry.path, "tree entry path rejected");
                stats.rejected_paths += 1;
                continue;
            };
            let size = entry.size.unwrap_or(0);
            if size > limits.max_file_bytes {
                stats.skipped_large += 1;
                continue;
            }
            if selected.len() >= limits.max_files || planned_bytes + size > limits.max_total_bytes {
                stats.truncated = true;
                continue;
            }
            planned_bytes += size;
            selected.push((rel, entry.sha));
        }

        tokio::fs::create_dir_all(dest)
            .await
            .map_err(|e| GithubError::Io(format!("cannot create {}: {e}", dest.display())))?;
        let max_file = limits.max_file_bytes;
        let results: Vec<Fetched> = futures::stream::iter(selected)
            .map(|(rel, blob_sha)| {
                let repo_path = &repo_path;
                async move {
                    let url = self
                        .app
                        .url(&format!("repos/{repo_path}/git/blobs/{}", urls::segment(&blob_sha)))?;
                    let blob: Blob = self.get_json_uncached(url).await?;
                    if blob.encoding != "base64" {
                        return Err(GithubError::Decode(format!(
                            "blob {blob_sha} has encoding {:?}",
                            blob.encoding
                        )));
                    }
                    let bytes = decode_base64(&blob.content)?;
                    if bytes.len() as u64 > max_file {
                        return Ok(Fetched::Large);
                    }
                    if bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0) {
                        return Ok(Fetched::Binary);
                    }
                    let target = dest.join(&rel);
                    if let Some(parent) = target.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(|e| GithubError::Io(format!("cannot create {}: {e}", parent.display())))?;
                    }
                    tokio::fs::write(&target, &bytes)
                        .await
                        .map_err(|e| GithubError::Io(format!("cannot write {}: {e}", target.display())))?;
                    Ok(Fetched::Written(bytes.len() as u64))
                }
            })
            .buffer_unordered(BLOB_CONCURRENCY)
            .try_collect()
            .await?;
        for r in results {
            match r {
                Fetched::Written(n) => {
                    stats.files += 1;
                    stats.bytes += n;
                }
                Fetched::Binary => stats.skipped_binary += 1,
                Fetched::Large => stats.skipped_large += 1,
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_paths() {
        assert_eq!(safe_relative("src/main.rs"), Some(PathBuf::from("src/main.rs")));
        assert_eq!(safe_relative("../evil"), None);
        assert_eq!(safe_relative("a/../../evil"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("./x"), None);
        assert_eq!(safe_relative(""), None);
    }
}
