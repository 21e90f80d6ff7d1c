//! Gitignore-aware directory walk that reads each file at most once.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use ignore::{DirEntry, WalkBuilder};

use super::{AnalyzeOptions, ScanSummary};

/// Directories that are never analysed, with or without a `.gitignore`.
pub(crate) const ALWAYS_SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "bower_components",
    "vendor",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".gradle",
    ".next",
    ".nuxt",
    ".terraform",
    ".bundle",
];

/// Binary detection window: a NUL byte in here marks the file as binary.
const SNIFF_BYTES: u64 = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Text,
    Binary,
    Large,
}

/// One regular file of the repository. Only text files matching the `keep` predicate retain
/// their content; everything else is reduced to a few markers while it is read.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// Forward-slash path relative to the root.
    pub path: String,
    pub size: u64,
    pub kind: FileKind,
    pub content: Option<String>,
    /// Contains a PEM private key header.
    pub private_key: bool,
    /// Rust source containing `#[test]` or `#[cfg(test)]`.
    pub inline_tests: bool,
}

impl FileEntry {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Walk `root`; `keep(file_name)` decides which text files keep their content.
pub(crate) fn walk(root: &Path, opts: &AnalyzeOptions, keep: fn(&str) -> bool) -> (Vec<FileEntry>, ScanSummary) {
    let mut summary = ScanSummary::default();
    let mut files = Vec::new();
    for result in builder(root).build() {
        let entry = match result {
            Ok(entry) => entry,
            Err(err) => {
                tracing::warn!(error = %err, "skipping unreadable entry");
                summary.skipped_unreadable += 1;
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            summary.skipped_symlinks += 1;
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        if summary.files_scanned >= opts.max_files as u64 {
            summary.truncated = true;
            break;
        }
        summary.files_scanned += 1;
        match read_entry(root, &entry, opts, keep) {
            Ok(file) => {
                match file.kind {
                    FileKind::Text => summary.bytes_scanned += file.size,
                    FileKind::Binary => summary.skipped_binary += 1,
                    FileKind::Large => summary.skipped_large += 1,
                }
                files.push(file);
            }
            Err(err) => {
                tracing::warn!(path = %entry.path().display(), error = %err, "skipping unreadable file");
                summary.skipped_unreadable += 1;
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, summary)
}

fn builder(root: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| {
            entry.depth() == 0
                || !(entry.file_type().is_some_and(|t| t.is_dir())
                    && ALWAYS_SKIPPED_DIRS.contains(&entry.file_name().to_string_lossy().as_ref()))
        });
    builder
}

fn read_entry(root: &Path, entry: &DirEntry, opts: &AnalyzeOptions, keep: fn(&str) -> bool) -> io::Result<FileEntry> {
    let path = relative_path(root, entry.path());
    let size = entry.metadata().map_err(io::Error::other)?.len();
    let mut file = FileEntry {
        path,
        size,
        kind: FileKind::Large,
        content: None,
        private_key: false,
        inline_tests: false,
    };
    if size > opts.max_file_bytes {
        return Ok(file);
    }
    let Some(bytes) = read_text(entry.path(), size, opts.max_file_bytes)? else {
        file.kind = FileKind::Binary;
        return Ok(file);
    };
    file.kind = FileKind::Text;
    file.size = bytes.len() as u64;
    let text = String::from_utf8_lossy(&bytes);
    file.private_key = has_private_key(&text);
    file.inline_tests = file.path.ends_with(".rs") && (text.contains("#[test]") || text.contains("#[cfg(test)]"));
    if keep(file.name()) {
        file.content = Some(text.into_owned());
    }
    Ok(file)
}

/// Reads a file, returning `None` if it is binary (NUL byte in the first 8 KiB).
fn read_text(path: &Path, size: u64, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let mut buf = Vec::with_capacity(size.min(max) as usize);
    (&mut file).take(SNIFF_BYTES).read_to_end(&mut buf)?;
    if buf.contains(&0) {
        return Ok(None);
    }
    let rest = max.saturating_sub(buf.len() as u64);
    file.take(rest).read_to_end(&mut buf)?;
    Ok(Some(buf))
}

fn has_private_key(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("-----BEGIN ") && line.contains("PRIVATE KEY-----")
    })
}

fn relative_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_header_is_recognised_only_at_line_start() {
        let header = concat!("-----BEGIN ", "OPENSSH PRIVATE KEY-----");
        assert!(has_private_key(&format!("x\n{header}\nabc\n")));
        assert!(!has_private_key(&format!("let s = \"{header}\";")));
        assert!(!has_private_key("-----BEGIN PUBLIC KEY-----"));
    }
}
