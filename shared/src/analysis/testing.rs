//! Test directories, test files and test frameworks.

use std::collections::BTreeSet;

use super::TestInfo;
use super::index::RepoIndex;
use super::languages::is_source_code;
use super::stacks::{Stack, StackKind};
use super::walk::FileEntry;

const TEST_DIR_NAMES: &[&str] = &["tests", "test", "__tests__", "spec", "specs", "e2e"];

/// (kind, word in the stack's manifests and config files, framework)
const MANIFEST_WORDS: &[(StackKind, &str, &str)] = &[
    (StackKind::Python, "pytest", "pytest"),
    (StackKind::Java, "junit", "junit"),
    (StackKind::Java, "testng", "testng"),
    (StackKind::Ruby, "rspec", "rspec"),
    (StackKind::Ruby, "minitest", "minitest"),
];

type FileSignal = fn(&FileEntry) -> bool;

/// (kind, file below the stack's directory that proves the framework is used, framework)
const FILE_SIGNALS: &[(StackKind, FileSignal, &str)] = &[
    (StackKind::Rust, is_rust_test, "cargo test"),
    (StackKind::Go, |f| f.name().ends_with("_test.go"), "go test"),
    (
        StackKind::Python,
        |f| matches!(f.name(), "conftest.py" | "pytest.ini"),
        "pytest",
    ),
    (
        StackKind::Ruby,
        |f| f.name() == ".rspec" || f.name().ends_with("_spec.rb"),
        "rspec",
    ),
    (StackKind::Ruby, |f| f.name().ends_with("_test.rb"), "minitest"),
];

/// (npm package, framework)
const NODE_PACKAGES: &[(&str, &str)] = &[
    ("jest", "jest"),
    ("vitest", "vitest"),
    ("mocha", "mocha"),
    ("jasmine", "jasmine"),
    ("ava", "ava"),
    ("@playwright/test", "playwright"),
    ("cypress", "cypress"),
];

pub(crate) fn detect(index: &RepoIndex, stacks: &[Stack]) -> TestInfo {
    let test_dirs: BTreeSet<String> = index.files.iter().filter_map(|f| test_dir_of(&f.path)).collect();
    let frameworks: BTreeSet<String> = stacks.iter().flat_map(|s| s.test_frameworks.iter().cloned()).collect();
    TestInfo {
        test_dirs: test_dirs.into_iter().collect(),
        test_files: index.files.iter().filter(|f| is_test_file(f)).count() as u64,
        frameworks: frameworks.into_iter().collect(),
    }
}

/// The top-most test directory containing `path`, if any.
fn test_dir_of(path: &str) -> Option<String> {
    let (dirs, _) = path.rsplit_once('/')?;
    let mut end = 0;
    for part in dirs.split('/') {
        end += part.len();
        if TEST_DIR_NAMES.contains(&part) {
            return Some(dirs[..end].to_string());
        }
        end += 1;
    }
    None
}

pub(crate) fn is_test_file(file: &FileEntry) -> bool {
    let name = file.name();
    is_source_code(name) && (file.inline_tests || has_test_name(name) || test_dir_of(&file.path).is_some())
}

fn has_test_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    (ext == "py" && stem.starts_with("test_"))
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || stem.ends_with(".test")
        || stem.ends_with(".spec")
        || (matches!(ext, "java" | "kt" | "scala" | "groovy" | "cs")
            && ["Test", "Tests", "Spec", "IT"].iter().any(|s| stem.ends_with(s)))
}

fn is_rust_test(file: &FileEntry) -> bool {
    file.path.ends_with(".rs") && (file.inline_tests || test_dir_of(&file.path).is_some())
}

/// Test frameworks of one stack, sorted.
pub(crate) fn frameworks_for(index: &RepoIndex, stack: &Stack, manifest_text: &str) -> Vec<String> {
    let mut found = BTreeSet::new();
    let config: String = index
        .in_dir(&stack.dir)
        .filter_map(|f| f.content.as_deref())
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase();
    for (kind, word, framework) in MANIFEST_WORDS {
        if *kind == stack.kind && config.contains(word) {
            found.insert(*framework);
        }
    }
    let below: Vec<&FileEntry> = index.under(&stack.dir).collect();
    for (kind, signal, framework) in FILE_SIGNALS {
        if *kind == stack.kind && below.iter().any(|f| signal(f)) {
            found.insert(*framework);
        }
    }
    if stack.kind == StackKind::Node {
        found.extend(node_frameworks(manifest_text));
    }
    let python_tests = || below.iter().any(|f| f.name().ends_with(".py") && is_test_file(f));
    if stack.kind == StackKind::Python && found.is_empty() && python_tests() {
        found.insert("unittest");
    }
    found.into_iter().map(str::to_string).collect()
}

fn node_frameworks(package_json: &str) -> Vec<&'static str> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(package_json) else {
        return Vec::new();
    };
    let has_dep = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|section| json.get(section).and_then(|d| d.get(name)).is_some())
    };
    let mut found: Vec<&'static str> = NODE_PACKAGES
        .iter()
        .filter(|(package, _)| has_dep(package))
        .map(|(_, framework)| *framework)
        .collect();
    let test_script = json.pointer("/scripts/test").and_then(|t| t.as_str());
    if test_script.is_some_and(|t| t.contains("node --test")) {
        found.push("node:test");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_dirs_are_top_most() {
        assert_eq!(test_dir_of("tests/unit/a.py").as_deref(), Some("tests"));
        assert_eq!(
            test_dir_of("web/src/__tests__/a.test.ts").as_deref(),
            Some("web/src/__tests__")
        );
        assert_eq!(test_dir_of("src/test/java/FooTest.java").as_deref(), Some("src/test"));
        assert_eq!(test_dir_of("src/testing.rs"), None);
        assert_eq!(test_dir_of("tests"), None);
    }

    #[test]
    fn test_file_names() {
        for name in [
            "test_app.py",
            "app_test.go",
            "user_spec.rb",
            "a.test.tsx",
            "FooTest.java",
        ] {
            assert!(has_test_name(name), "{name}");
        }
        for name in ["app.py", "contest.go", "latest.js", "Testing.java"] {
            assert!(!has_test_name(name), "{name}");
        }
    }
}
