//! Lookup structure over the walked files plus relative-path helpers.

use std::collections::{BTreeMap, BTreeSet};

use super::walk::FileEntry;

pub(crate) struct RepoIndex {
    /// Sorted by path.
    pub files: Vec<FileEntry>,
    /// Directory ("." for the root) -> names of the files directly inside it.
    dirs: BTreeMap<String, BTreeSet<String>>,
}

impl RepoIndex {
    pub fn new(mut files: Vec<FileEntry>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut dirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let (dir, name) = split(&file.path);
            dirs.entry(dir.to_string()).or_default().insert(name.to_string());
        }
        Self { files, dirs }
    }

    pub fn has(&self, dir: &str, name: &str) -> bool {
        self.dirs.get(dir).is_some_and(|names| names.contains(name))
    }

    /// First of `names` present in `dir`.
    pub fn first_of<'n>(&self, dir: &str, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|name| self.has(dir, name))
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// Retained content of `dir/name` (only files the walker was asked to keep).
    pub fn text(&self, dir: &str, name: &str) -> Option<&str> {
        self.file(&join(dir, name))?.content.as_deref()
    }

    /// Files directly inside `dir`.
    pub fn in_dir<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a FileEntry> + 'a {
        self.dirs
            .get(dir)
            .into_iter()
            .flatten()
            .filter_map(move |name| self.file(&join(dir, name)))
    }

    /// Files anywhere below `dir`.
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a FileEntry> + 'a {
        self.files.iter().filter(move |f| is_under(&f.path, dir))
    }
}

/// `join(".", "a")` = `a`, `join("web", "a")` = `web/a`.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `split("web/a.js")` = `("web", "a.js")`, `split("a.js")` = `(".", "a.js")`.
pub(crate) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or((".", path))
}

/// Whether `path` lies below directory `dir` ("." contains everything).
pub(crate) fn is_under(path: &str, dir: &str) -> bool {
    dir == "." || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}
