//! Repository hygiene and security findings.

use super::index::{RepoIndex, split};
use super::languages::{is_dockerfile, is_source_code};
use super::stacks::{Stack, StackKind, in_fixture_dir};
use super::walk::FileKind;
use super::{CiConfig, Finding, ScanSummary, Severity, TestInfo, dockerfile};

/// At most this many `large-file-skipped` findings; the summary has the full count.
const MAX_LARGE_FILE_FINDINGS: usize = 20;

/// (kind, severity of a missing lock file, what to do). Kinds not listed have no lock file
/// convention worth reporting.
const LOCKFILE_ADVICE: &[(StackKind, Severity, &str)] = &[
    (
        StackKind::Node,
        Severity::Medium,
        "Commit the lock file your package manager writes (package-lock.json, pnpm-lock.yaml, yarn.lock) and install with the frozen-lockfile command in CI.",
    ),
    (
        StackKind::Python,
        Severity::Medium,
        "Commit a lock file (uv.lock, poetry.lock, Pipfile.lock) or pin every requirement with `==` (for example with pip-compile).",
    ),
    (
        StackKind::Ruby,
        Severity::Medium,
        "Run `bundle lock` and commit Gemfile.lock.",
    ),
    (
        StackKind::Rust,
        Severity::Low,
        "Run `cargo generate-lockfile` and commit Cargo.lock; it is recommended for all packages since Rust 1.84 and needed for reproducible CI.",
    ),
    (
        StackKind::Go,
        Severity::Low,
        "Run `go mod tidy` and commit go.sum so module checksums are verified.",
    ),
];

const ENV_TEMPLATE_SUFFIXES: &[&str] = &["example", "sample", "template", "dist", "defaults"];

pub(crate) struct Context<'a> {
    pub index: &'a RepoIndex,
    pub stacks: &'a [Stack],
    pub tests: &'a TestInfo,
    pub ci: &'a [CiConfig],
    pub summary: &'a ScanSummary,
}

pub(crate) fn collect(ctx: &Context<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    repository_findings(ctx, &mut findings);
    lockfile_findings(ctx, &mut findings);
    dockerfile_findings(ctx.index, &mut findings);
    secret_findings(ctx.index, &mut findings);
    scan_findings(ctx, &mut findings);
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.path.cmp(&b.path))
    });
    findings
}

fn finding(code: &str, severity: Severity, message: String, path: Option<&str>) -> Finding {
    Finding {
        code: code.to_string(),
        severity,
        message,
        path: path.map(str::to_string),
    }
}

fn repository_findings(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let root_has = |prefixes: &[&str]| {
        ctx.index.in_dir(".").any(|f| {
            let upper = f.name().to_ascii_uppercase();
            prefixes.iter().any(|p| upper.starts_with(p))
        })
    };
    let has_code = ctx
        .index
        .files
        .iter()
        .any(|f| f.kind == FileKind::Text && is_source_code(f.name()));
    if ctx.ci.is_empty() {
        out.push(finding(
            "no-ci",
            Severity::Medium,
            "No CI configuration was found, so changes can be merged without an automated build or test run. Add a workflow that builds and tests every push and pull request (AutoDevOps can generate one).".into(),
            None,
        ));
    }
    if has_code && ctx.tests.test_files == 0 {
        out.push(finding(
            "no-tests",
            Severity::Medium,
            "No test files were found, so regressions can only be caught by hand. Add automated tests (a tests/ directory or *_test / *.test files) and run them in CI.".into(),
            None,
        ));
    }
    if !root_has(&["README"]) {
        out.push(finding(
            "no-readme",
            Severity::Low,
            "The repository has no README at its root, so users and contributors have no entry point. Add a README.md that explains what the project does and how to build, test and run it.".into(),
            None,
        ));
    }
    if !root_has(&["LICENSE", "LICENCE", "COPYING"]) {
        out.push(finding(
            "no-license",
            Severity::Low,
            "No LICENSE file was found at the root, so others have no clear right to use or contribute to the code. Add a LICENSE file with the license you intend.".into(),
            None,
        ));
    }
    if !ctx.stacks.is_empty() && !ctx.index.has(".", ".gitignore") {
        out.push(finding(
            "no-gitignore",
            Severity::Low,
            "There is no .gitignore at the root, which makes it easy to commit build output, dependencies or local secrets. Add a .gitignore suited to the project's languages.".into(),
            None,
        ));
    }
}

fn lockfile_findings(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    for stack in ctx.stacks.iter().filter(|s| s.lockfile.is_none()) {
        let Some((_, severity, advice)) = LOCKFILE_ADVICE.iter().find(|(k, _, _)| *k == stack.kind) else {
            continue;
        };
        if stack.kind == StackKind::Go && !go_has_dependencies(ctx.index, stack) {
            continue;
        }
        out.push(finding(
            "no-lockfile",
            *severity,
            format!(
                "The {} project in {} ({}) has no lock file, so each install may resolve different dependency versions and builds are not reproducible. {advice}",
                stack.kind.as_str(),
                stack.dir,
                stack.tool
            ),
            Some(&stack.manifest),
        ));
    }
}

fn go_has_dependencies(index: &RepoIndex, stack: &Stack) -> bool {
    let (dir, name) = split(&stack.manifest);
    index.text(dir, name).is_some_and(|t| t.contains("require"))
}

fn dockerfile_findings(index: &RepoIndex, out: &mut Vec<Finding>) {
    let dockerfiles = index
        .files
        .iter()
        .filter(|f| is_dockerfile(f.name()) && !in_fixture_dir(&f.path));
    for file in dockerfiles {
        let Some(text) = file.content.as_deref() else {
            continue;
        };
        if dockerfile::runs_as_root(text) {
            out.push(finding(
                "dockerfile-runs-as-root",
                Severity::Medium,
                "The final image runs as root (no USER instruction in the last stage, or USER root), so a compromised process has full control of the container. Create an unprivileged user and switch to it with USER before the entrypoint.".into(),
                Some(&file.path),
            ));
        }
        let unpinned = dockerfile::unpinned_images(text);
        if !unpinned.is_empty() {
            out.push(finding(
                "dockerfile-latest-tag",
                Severity::Low,
                format!(
                    "Base image(s) {} use the implicit or explicit `latest` tag, so rebuilds can silently pick up a different image. Pin a version tag (or a digest).",
                    unpinned.join(", ")
                ),
                Some(&file.path),
            ));
        }
    }
}

fn is_env_file(name: &str) -> bool {
    match name.strip_prefix(".env") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|suffix| !ENV_TEMPLATE_SUFFIXES.contains(&suffix)),
        None => false,
    }
}

/// Never includes any part of the secret in the message.
fn secret_findings(index: &RepoIndex, out: &mut Vec<Finding>) {
    for file in &index.files {
        if is_env_file(file.name()) {
            out.push(finding(
                "env-file-committed",
                Severity::High,
                "An environment file is committed; these usually hold credentials, which are then readable by everyone with access to the repository and its history. Remove it, add it to .gitignore, rotate any secrets it contained and commit a .env.example with placeholder values instead.".into(),
                Some(&file.path),
            ));
        }
        if file.private_key {
            out.push(finding(
                "private-key-committed",
                Severity::High,
                "A private key is committed; anyone with read access to the repository or its history can use it. Remove the file, purge it from history, revoke and rotate the key, and load keys from a secret store at runtime.".into(),
                Some(&file.path),
            ));
        }
    }
}

fn scan_findings(ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let large = ctx.index.files.iter().filter(|f| f.kind == FileKind::Large);
    for file in large.take(MAX_LARGE_FILE_FINDINGS) {
        out.push(finding(
            "large-file-skipped",
            Severity::Info,
            format!(
                "This file ({} bytes) exceeds the analysis size limit and was not inspected. Large files in git slow down clones; consider Git LFS or an artifact store.",
                file.size
            ),
            Some(&file.path),
        ));
    }
    if ctx.summary.truncated {
        out.push(finding(
            "analysis-truncated",
            Severity::Info,
            format!(
                "The repository has more files than the analysis limit; only the first {} files were inspected, so results may be incomplete.",
                ctx.summary.files_scanned
            ),
            None,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_names() {
        assert!(is_env_file(".env"));
        assert!(is_env_file(".env.production"));
        assert!(!is_env_file(".env.example"));
        assert!(!is_env_file(".envrc"));
        assert!(!is_env_file("env"));
    }
}
