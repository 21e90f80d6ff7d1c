//! Offline repository analyser and CI generator.
//!
//! The last link of the model fallback chain: deterministic, no network. [`analyze`] walks a
//! checked-out repository (respecting `.gitignore`, always skipping dependency/build dirs such
//! as `node_modules` or `target`) and produces an [`AnalysisReport`]; [`generate_ci`] turns a
//! report into one GitHub Actions workflow.
//!
//! Everything in the report is sorted and uses forward-slash paths relative to the root, so the
//! same tree always yields the same JSON.

mod ci;
mod dockerfile;
mod existing_ci;
mod findings;
mod index;
mod languages;
mod manifest;
mod stacks;
mod testing;
mod walk;
mod workflow;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ci::{GeneratedCi, WORKFLOW_PATH, generate_ci};
pub use stacks::{Stack, StackKind};

/// Limits for one analysis run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Files larger than this are counted (`skipped_large`) but never read.
    pub max_file_bytes: u64,
    /// Stop walking after this many regular files (`summary.truncated` is then set).
    pub max_files: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 1024 * 1024,
            max_files: 100_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("repository path not found: {0}")]
    NotFound(PathBuf),
    #[error("repository path is not a directory: {0}")]
    NotADirectory(PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The result of [`analyze`]; stored as JSON on the job row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnalysisReport {
    /// Sorted by bytes (descending), then name.
    pub languages: Vec<LanguageStat>,
    /// Sorted by dir, kind, manifest.
    pub stacks: Vec<Stack>,
    pub tests: TestInfo,
    /// Existing CI configuration, sorted by provider then path.
    pub ci: Vec<CiConfig>,
    /// Sorted by severity (highest first), code, path.
    pub findings: Vec<Finding>,
    pub summary: ScanSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LanguageStat {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestInfo {
    /// Top-most test directories (`tests`, `src/test`, `web/__tests__` ...), sorted.
    pub test_dirs: Vec<String>,
    /// Source files that are tests: inside a test dir, named like a test, or (Rust) holding
    /// inline `#[test]`/`#[cfg(test)]` code.
    pub test_files: u64,
    /// Test frameworks of all stacks, sorted and de-duplicated.
    pub frameworks: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CiProvider {
    GithubActions,
    GitlabCi,
    Circleci,
    Travis,
    Jenkins,
    AzurePipelines,
    BitbucketPipelines,
    Drone,
    Buildkite,
    Appveyor,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct CiConfig {
    pub provider: CiProvider,
    pub path: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    /// Stable kebab-case identifier, e.g. `no-ci`, `dockerfile-runs-as-root`.
    pub code: String,
    pub severity: Severity,
    /// Human readable: what is wrong, why it matters, what to do. Never contains file contents.
    pub message: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanSummary {
    /// Regular files visited (text, binary and oversized alike).
    pub files_scanned: u64,
    /// Bytes read from text files.
    pub bytes_scanned: u64,
    /// Files with a NUL byte in their first 8 KiB.
    pub skipped_binary: u64,
    /// Files over `max_file_bytes`, counted but not read.
    pub skipped_large: u64,
    /// Symbolic links are never followed.
    pub skipped_symlinks: u64,
    /// Entries that could not be read (permissions, races).
    pub skipped_unreadable: u64,
    /// `max_files` was reached before the walk finished.
    pub truncated: bool,
}

/// Analyse the repository checked out at `root`.
pub fn analyze(root: &Path, opts: &AnalyzeOptions) -> Result<AnalysisReport, AnalysisError> {
    check_root(root)?;
    let (files, summary) = walk::walk(root, opts, stacks::wants_content);
    let index = index::RepoIndex::new(files);

    let languages = languages::count(&index);
    let stacks = stacks::detect(&index);
    let tests = testing::detect(&index, &stacks);
    let ci = existing_ci::detect(&index);
    let findings = findings::collect(&findings::Context {
        index: &index,
        stacks: &stacks,
        tests: &tests,
        ci: &ci,
        summary: &summary,
    });
    tracing::debug!(
        files = summary.files_scanned,
        stacks = stacks.len(),
        findings = findings.len(),
        "offline analysis finished"
    );
    Ok(AnalysisReport {
        languages,
        stacks,
        tests,
        ci,
        findings,
        summary,
    })
}

fn check_root(root: &Path) -> Result<(), AnalysisError> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(AnalysisError::NotADirectory(root.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AnalysisError::NotFound(root.to_path_buf())),
        Err(source) => Err(AnalysisError::Io {
            path: root.to_path_buf(),
            source,
        }),
    }
}
