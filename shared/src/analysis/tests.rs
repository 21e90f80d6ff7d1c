//! End-to-end tests of [`super::analyze`] over fixture repositories built on disk.

use std::path::Path;

use tempfile::TempDir;

use super::*;

pub(crate) fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub(crate) fn repo(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

/// Rust workspace at the root, pnpm app in web/, poetry service in api/.
pub(crate) fn monorepo() -> TempDir {
    let dir = repo(&[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n",
        ),
        ("Cargo.lock", "version = 4\n"),
        (
            "crates/core/Cargo.toml",
            "[package]\nname = \"core\"\nversion = \"0.1.0\"\n",
        ),
        (
            "crates/core/src/lib.rs",
            "pub fn add(a: u8, b: u8) -> u8 { a + b }\n#[cfg(test)]\nmod tests {}\n",
        ),
        ("crates/core/tests/it.rs", "#[test]\nfn works() {}\n"),
        (
            "web/package.json",
            r#"{"name":"web","scripts":{"build":"vite build","test":"vitest run"},"devDependencies":{"vitest":"^2.0.0"}}"#,
        ),
        ("web/pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
        ("web/.nvmrc", "20\n"),
        ("web/src/app.ts", "export const x: number = 1;\n"),
        ("web/src/app.test.ts", "import { x } from './app';\n"),
        ("web/node_modules/left-pad/index.js", "module.exports = 1;\n"),
        ("web/node_modules/left-pad/package.json", "{}"),
        (
            "api/pyproject.toml",
            "[tool.poetry]\nname = \"api\"\n\n[project]\nrequires-python = \">=3.11\"\n\n[tool.poetry.group.dev.dependencies]\npytest = \"^8\"\n",
        ),
        ("api/poetry.lock", "# lock\n"),
        ("api/app/main.py", "def main():\n    return 1\n"),
        ("api/tests/test_main.py", "def test_main():\n    assert True\n"),
        (".gitignore", "dist/\n*.log\n"),
        ("dist/bundle.js", "console.log('built');\n"),
        ("debug.log", "log line\n"),
        ("README.md", "# Mono\n"),
        ("LICENSE", "MIT\n"),
    ]);
    write(dir.path(), "assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0rest");
    write(dir.path(), "data/big.txt", "x".repeat(4096));
    dir
}

pub(crate) fn small_opts() -> AnalyzeOptions {
    AnalyzeOptions {
        max_file_bytes: 1024,
        ..AnalyzeOptions::default()
    }
}

fn codes(report: &AnalysisReport) -> Vec<&str> {
    report.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn monorepo_stacks_with_dirs_and_lockfiles() {
    let dir = monorepo();
    let report = analyze(dir.path(), &small_opts()).unwrap();
    let stacks: Vec<(StackKind, &str, &str, &str, Option<&str>)> = report
        .stacks
        .iter()
        .map(|s| {
            (
                s.kind,
                s.tool.as_str(),
                s.dir.as_str(),
                s.manifest.as_str(),
                s.lockfile.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        stacks,
        vec![
            (StackKind::Rust, "cargo", ".", "Cargo.toml", Some("Cargo.lock")),
            (
                StackKind::Python,
                "poetry",
                "api",
                "api/pyproject.toml",
                Some("api/poetry.lock")
            ),
            (
                StackKind::Node,
                "pnpm",
                "web",
                "web/package.json",
                Some("web/pnpm-lock.yaml")
            ),
        ]
    );
    let rust = &report.stacks[0];
    assert!(rust.workspace);
    assert_eq!(rust.test_frameworks, vec!["cargo test"]);
    let python = &report.stacks[1];
    assert_eq!(python.version.as_deref(), Some("3.11"));
    assert_eq!(python.test_frameworks, vec!["pytest"]);
    let node = &report.stacks[2];
    assert_eq!(node.scripts, vec!["build", "test"]);
    assert_eq!(node.version.as_deref(), Some("20"));
    assert_eq!(node.version_file.as_deref(), Some("web/.nvmrc"));
    assert_eq!(node.test_frameworks, vec!["vitest"]);
}

#[test]
fn monorepo_languages_tests_and_summary() {
    let dir = monorepo();
    let report = analyze(dir.path(), &small_opts()).unwrap();
    let lang = |name: &str| report.languages.iter().find(|l| l.name == name);
    let rust = lang("Rust").unwrap();
    assert_eq!(rust.files, 2);
    let expected_rust_bytes = (std::fs::metadata(dir.path().join("crates/core/src/lib.rs"))
        .unwrap()
        .len()
        + std::fs::metadata(dir.path().join("crates/core/tests/it.rs"))
            .unwrap()
            .len()) as u64;
    assert_eq!(rust.bytes, expected_rust_bytes);
    assert_eq!(lang("TypeScript").unwrap().files, 2);
    assert_eq!(lang("Python").unwrap().files, 2);
    // node_modules and .gitignore'd dist/ are never counted.
    assert!(lang("JavaScript").is_none(), "{:?}", report.languages);
    let sorted = report
        .languages
        .windows(2)
        .all(|w| (w[0].bytes, &w[1].name) >= (w[1].bytes, &w[0].name));
    assert!(sorted, "{:?}", report.languages);

    assert_eq!(report.tests.test_dirs, vec!["api/tests", "crates/core/tests"]);
    // lib.rs (inline tests), it.rs, app.test.ts, test_main.py
    assert_eq!(report.tests.test_files, 4);
    assert_eq!(report.tests.frameworks, vec!["cargo test", "pytest", "vitest"]);

    assert_eq!(report.summary.skipped_binary, 1);
    assert_eq!(report.summary.skipped_large, 1);
    assert!(!report.summary.truncated);
    let json = serde_json::to_string(&report).unwrap();
    for ignored in ["node_modules", "dist/bundle.js", "debug.log"] {
        assert!(!json.contains(ignored), "{ignored} leaked into the report");
    }
    let large: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code == "large-file-skipped")
        .collect();
    assert_eq!(large.len(), 1);
    assert_eq!(large[0].path.as_deref(), Some("data/big.txt"));
    assert!(codes(&report).contains(&"no-ci"));
    assert!(!codes(&report).contains(&"no-tests"));
    assert!(!codes(&report).contains(&"no-lockfile"));
    assert!(!codes(&report).contains(&"no-readme"));
}

#[test]
fn hygiene_and_secret_findings() {
    let key = concat!(
        "-----BEGIN ",
        "RSA PRIVATE KEY-----\nMIIEsecretkeymaterial\n-----END RSA PRIVATE KEY-----\n"
    );
    let dir = repo(&[
        ("package.json", r#"{"name":"svc","scripts":{"start":"node index.js"}}"#),
        ("index.js", "console.log('hi');\n"),
        (
            "Dockerfile",
            "FROM node\nCOPY . /app\nCMD [\"node\", \"/app/index.js\"]\n",
        ),
        (".env", "API_TOKEN=hunter2-very-secret\n"),
        (".env.example", "API_TOKEN=\n"),
        ("deploy/id_rsa", key),
    ]);
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    let find = |code: &str| report.findings.iter().find(|f| f.code == code);
    for code in [
        "no-ci",
        "no-lockfile",
        "no-tests",
        "dockerfile-runs-as-root",
        "dockerfile-latest-tag",
        "env-file-committed",
        "private-key-committed",
        "no-readme",
        "no-license",
        "no-gitignore",
    ] {
        assert!(find(code).is_some(), "missing {code}: {:?}", codes(&report));
    }
    assert_eq!(find("no-lockfile").unwrap().path.as_deref(), Some("package.json"));
    let env = find("env-file-committed").unwrap();
    assert_eq!(env.severity, Severity::High);
    assert_eq!(env.path.as_deref(), Some(".env"));
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.code == "env-file-committed")
            .count(),
        1,
        ".env.example is a template, not a secret"
    );
    assert_eq!(
        find("private-key-committed").unwrap().path.as_deref(),
        Some("deploy/id_rsa")
    );
    assert_eq!(
        find("dockerfile-runs-as-root").unwrap().path.as_deref(),
        Some("Dockerfile")
    );

    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("hunter2"));
    assert!(!json.contains("MIIEsecretkeymaterial"));

    let order: Vec<(Severity, &str)> = report.findings.iter().map(|f| (f.severity, f.code.as_str())).collect();
    let sorted = order
        .windows(2)
        .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1));
    assert!(sorted, "{order:?}");
    assert_eq!(report.findings[0].severity, Severity::High);
}

#[test]
fn dockerfile_with_non_root_user_is_fine() {
    let dir = repo(&[(
        "Dockerfile",
        "FROM rust:1.80 AS build\nRUN cargo build\nFROM debian:12-slim\nUSER 10001\n",
    )]);
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    assert!(!codes(&report).contains(&"dockerfile-runs-as-root"));
    assert!(!codes(&report).contains(&"dockerfile-latest-tag"));
    assert_eq!(report.stacks.len(), 1);
    assert_eq!(report.stacks[0].kind, StackKind::Docker);
}

#[test]
fn existing_github_workflow_is_detected() {
    let dir = repo(&[
        (".github/workflows/ci.yml", "on: push\n"),
        (".gitlab-ci.yml", "test: {}\n"),
        ("main.go", "package main\n"),
    ]);
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    assert_eq!(
        report.ci,
        vec![
            CiConfig {
                provider: CiProvider::GithubActions,
                path: ".github/workflows/ci.yml".into()
            },
            CiConfig {
                provider: CiProvider::GitlabCi,
                path: ".gitlab-ci.yml".into()
            },
        ]
    );
    assert!(!codes(&report).contains(&"no-ci"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ci"][0]["provider"], "github_actions");
}

#[test]
fn node_workspace_members_are_not_separate_stacks() {
    let dir = repo(&[
        (
            "package.json",
            r#"{"private":true,"workspaces":["packages/*"],"packageManager":"yarn@1.22.19","engines":{"node":">=18.17"}}"#,
        ),
        ("yarn.lock", "# yarn lockfile v1\n"),
        ("packages/a/package.json", r#"{"name":"a"}"#),
        ("packages/b/package.json", r#"{"name":"b"}"#),
        ("tools/package.json", r#"{"name":"tools"}"#),
        ("test/fixtures/app/package.json", "{}"),
        ("test/fixtures/app/Dockerfile", "FROM node\n"),
    ]);
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    let node: Vec<_> = report.stacks.iter().filter(|s| s.kind == StackKind::Node).collect();
    assert_eq!(node.len(), 1, "{node:?}");
    assert_eq!(node[0].tool, "yarn");
    assert_eq!(node[0].tool_version.as_deref(), Some("1.22.19"));
    assert_eq!(node[0].version.as_deref(), Some("18"));
    assert!(node[0].workspace);
    // Fixture projects are neither stacks nor sources of Dockerfile findings.
    assert!(report.stacks.iter().all(|s| !s.dir.contains("fixtures")));
    assert!(!codes(&report).iter().any(|c| c.starts_with("dockerfile-")));
}

#[test]
fn skipped_dirs_without_gitignore() {
    let dir = repo(&[
        ("main.py", "print(1)\n"),
        ("target/debug/out.rs", "fn x() {}\n"),
        ("vendor/lib/x.go", "package x\n"),
        (".git/config", "[core]\n"),
        (".venv/lib/site.py", "x = 1\n"),
    ]);
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    assert_eq!(report.summary.files_scanned, 1);
    assert_eq!(report.languages.len(), 1);
    assert_eq!(report.languages[0].name, "Python");
}

#[test]
fn max_files_truncates_deterministically() {
    let dir = repo(&[("a.py", "1\n"), ("b.py", "2\n"), ("c.py", "3\n"), ("d/e.py", "4\n")]);
    let opts = AnalyzeOptions {
        max_files: 2,
        ..AnalyzeOptions::default()
    };
    let report = analyze(dir.path(), &opts).unwrap();
    assert!(report.summary.truncated);
    assert_eq!(report.summary.files_scanned, 2);
    assert!(codes(&report).contains(&"analysis-truncated"));
    assert_eq!(report, analyze(dir.path(), &opts).unwrap());
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed() {
    let outside = repo(&[("secret.py", "x = 1\n"), ("more/b.py", "y = 2\n")]);
    let dir = repo(&[("main.py", "print(1)\n")]);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.py"), dir.path().join("link.py")).unwrap();
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    assert_eq!(report.summary.files_scanned, 1);
    assert_eq!(report.summary.skipped_symlinks, 2);
    assert_eq!(report.languages[0].files, 1);
}

#[test]
fn analysis_is_deterministic() {
    let dir = monorepo();
    let first = analyze(dir.path(), &small_opts()).unwrap();
    let second = analyze(dir.path(), &small_opts()).unwrap();
    assert_eq!(first, second);
    let json = serde_json::to_string(&first).unwrap();
    assert_eq!(json, serde_json::to_string(&second).unwrap());
    assert!(
        !json.contains(&*dir.path().to_string_lossy()),
        "absolute path in report"
    );
    let back: AnalysisReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, first);
}

#[test]
fn root_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        analyze(&missing, &AnalyzeOptions::default()),
        Err(AnalysisError::NotFound(p)) if p == missing
    ));
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        analyze(&file, &AnalyzeOptions::default()),
        Err(AnalysisError::NotADirectory(p)) if p == file
    ));
}

#[test]
fn empty_repository() {
    let dir = tempfile::tempdir().unwrap();
    let report = analyze(dir.path(), &AnalyzeOptions::default()).unwrap();
    assert!(report.stacks.is_empty() && report.languages.is_empty());
    assert_eq!(report.summary, ScanSummary::default());
    // Nothing to test, so no "no-tests"; but no CI/README/LICENSE are still worth saying.
    assert_eq!(codes(&report), vec!["no-ci", "no-license", "no-readme"]);
}
