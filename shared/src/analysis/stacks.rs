//! Build system / package manager detection, driven by the [`SPECS`] table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::index::{RepoIndex, is_under, join, split};
use super::languages::is_dockerfile;
use super::manifest;
use super::testing;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StackKind {
    Rust,
    Node,
    Python,
    Go,
    Java,
    Ruby,
    Docker,
}

impl StackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Node => "node",
            Self::Python => "python",
            Self::Go => "go",
            Self::Java => "java",
            Self::Ruby => "ruby",
            Self::Docker => "docker",
        }
    }
}

/// One buildable unit: a manifest and the tooling around it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stack {
    pub kind: StackKind,
    /// cargo, npm, pnpm, yarn, bun, pip, poetry, uv, pipenv, go, maven, gradle, bundler, docker.
    pub tool: String,
    /// Directory of the manifest, "." for the root.
    pub dir: String,
    /// Manifest path relative to the root.
    pub manifest: String,
    /// Lock file path relative to the root.
    pub lockfile: Option<String>,
    /// Version of the tool pinned by the project (package.json `packageManager`).
    #[serde(default)]
    pub tool_version: Option<String>,
    /// Cargo workspace, package.json workspaces / pnpm workspace, Maven aggregator (`<modules>`)
    /// or Gradle multi-project build. Members below it are not separate stacks.
    #[serde(default)]
    pub workspace: bool,
    /// Requested toolchain version: `.nvmrc` / `engines.node`, `.python-version` /
    /// `requires-python`, go.mod `go` directive, rust-toolchain channel, `.ruby-version`, Java
    /// release.
    #[serde(default)]
    pub version: Option<String>,
    /// The file `version` came from when setup actions can read it directly (root-relative).
    #[serde(default)]
    pub version_file: Option<String>,
    /// package.json script names (node only), sorted.
    #[serde(default)]
    pub scripts: Vec<String>,
    /// Build-relevant files next to the manifest, relative to `dir` (gradlew, Rakefile,
    /// requirements-dev.txt ...), sorted.
    #[serde(default)]
    pub files: Vec<String>,
    /// Test frameworks used by this stack, sorted.
    #[serde(default)]
    pub test_frameworks: Vec<String>,
}

impl Stack {
    pub fn has_file(&self, name: &str) -> bool {
        self.files.iter().any(|f| f == name)
    }

    pub fn has_script(&self, name: &str) -> bool {
        self.scripts.iter().any(|s| s == name)
    }
}

/// How to recognise and describe one kind of stack.
struct KindSpec {
    kind: StackKind,
    /// Manifest file names, most authoritative first. One stack per kind and directory.
    manifests: &'static [&'static str],
    /// (lock file, tool it belongs to), in order of precedence.
    locks: &'static [(&'static str, &'static str)],
    default_tool: &'static str,
    /// Dedicated version files, most authoritative first.
    version_files: &'static [&'static str],
    /// Files recorded in [`Stack::files`] when present next to the manifest.
    notable: &'static [&'static str],
}

const SPECS: &[KindSpec] = &[
    KindSpec {
        kind: StackKind::Rust,
        manifests: &["Cargo.toml"],
        locks: &[("Cargo.lock", "cargo")],
        default_tool: "cargo",
        version_files: &["rust-toolchain.toml", "rust-toolchain"],
        notable: &[],
    },
    KindSpec {
        kind: StackKind::Node,
        manifests: &["package.json"],
        locks: &[
            ("pnpm-lock.yaml", "pnpm"),
            ("yarn.lock", "yarn"),
            ("bun.lock", "bun"),
            ("bun.lockb", "bun"),
            ("package-lock.json", "npm"),
            ("npm-shrinkwrap.json", "npm"),
        ],
        default_tool: "npm",
        version_files: &[".nvmrc", ".node-version"],
        notable: &[".yarnrc.yml", "pnpm-workspace.yaml"],
    },
    KindSpec {
        kind: StackKind::Python,
        manifests: &["pyproject.toml", "setup.py", "Pipfile", "requirements.txt"],
        locks: &[("uv.lock", "uv"), ("poetry.lock", "poetry"), ("Pipfile.lock", "pipenv")],
        default_tool: "pip",
        version_files: &[".python-version"],
        notable: &[
            "pyproject.toml",
            "requirements-dev.txt",
            "requirements-test.txt",
            "requirements.txt",
            "setup.py",
        ],
    },
    KindSpec {
        kind: StackKind::Go,
        manifests: &["go.mod"],
        locks: &[("go.sum", "go")],
        default_tool: "go",
        version_files: &[],
        notable: &[],
    },
    KindSpec {
        kind: StackKind::Java,
        manifests: &[
            "pom.xml",
            "build.gradle.kts",
            "build.gradle",
            "settings.gradle.kts",
            "settings.gradle",
        ],
        locks: &[("gradle.lockfile", "gradle")],
        default_tool: "gradle",
        version_files: &[".java-version"],
        notable: &["gradlew", "mvnw"],
    },
    KindSpec {
        kind: StackKind::Ruby,
        manifests: &["Gemfile"],
        locks: &[("Gemfile.lock", "bundler")],
        default_tool: "bundler",
        version_files: &[".ruby-version"],
        notable: &[".rspec", "Rakefile"],
    },
];

const NODE_TOOLS: &[&str] = &["npm", "pnpm", "yarn", "bun"];

/// Manifests and Dockerfiles below these directories are test data, not projects.
const FIXTURE_DIRS: &[&str] = &["fixtures", "__fixtures__", "testdata", "test-fixtures"];

/// Whether `path` lies inside a test-fixture directory.
pub(crate) fn in_fixture_dir(path: &str) -> bool {
    path.split('/').rev().skip(1).any(|c| FIXTURE_DIRS.contains(&c))
}

/// Whether the walker should keep the content of a text file with this name.
pub(crate) fn wants_content(name: &str) -> bool {
    SPECS
        .iter()
        .any(|s| s.manifests.contains(&name) || s.version_files.contains(&name))
        || matches!(name, "setup.cfg" | "tox.ini" | "pytest.ini")
        || (name.starts_with("requirements") && name.ends_with(".txt"))
        || is_dockerfile(name)
}

pub(crate) fn detect(index: &RepoIndex) -> Vec<Stack> {
    // (dir, kind) -> (manifest priority, spec, manifest name)
    let mut found: BTreeMap<(&str, StackKind), (usize, &KindSpec, &str)> = BTreeMap::new();
    for file in index.files.iter().filter(|f| !in_fixture_dir(&f.path)) {
        let (dir, name) = split(&file.path);
        for spec in SPECS {
            let Some(priority) = spec.manifests.iter().position(|m| *m == name) else {
                continue;
            };
            let slot = found.entry((dir, spec.kind)).or_insert((priority, spec, name));
            if priority < slot.0 {
                *slot = (priority, spec, name);
            }
        }
    }
    let mut stacks: Vec<Stack> = found
        .into_iter()
        .map(|((dir, _), (_, spec, name))| build(index, spec, dir, name))
        .collect();
    drop_workspace_members(&mut stacks);
    stacks.extend(docker_stacks(index));
    stacks.sort_by(|a, b| {
        (a.dir.as_str(), a.kind, a.manifest.as_str()).cmp(&(b.dir.as_str(), b.kind, b.manifest.as_str()))
    });
    stacks
}

fn build(index: &RepoIndex, spec: &KindSpec, dir: &str, manifest_name: &str) -> Stack {
    let text = index.text(dir, manifest_name).unwrap_or("");
    let present = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| index.has(dir, n))
            .map(|n| n.to_string())
            .collect()
    };
    let tool = preferred_tool(spec.kind, manifest_name, text)
        .or_else(|| spec.locks.iter().find(|(f, _)| index.has(dir, f)).map(|(_, t)| *t))
        .or_else(|| fallback_tool(spec.kind, manifest_name, text))
        .unwrap_or(spec.default_tool);
    let mut stack = Stack {
        kind: spec.kind,
        tool: tool.to_string(),
        dir: dir.to_string(),
        manifest: join(dir, manifest_name),
        lockfile: spec
            .locks
            .iter()
            .find(|(f, t)| *t == tool && index.has(dir, f))
            .map(|(f, _)| join(dir, f)),
        tool_version: None,
        workspace: false,
        version: None,
        version_file: None,
        scripts: Vec::new(),
        files: present(spec.notable),
        test_frameworks: Vec::new(),
    };
    if let Some(file) = index.first_of(dir, spec.version_files) {
        stack.version = index.text(dir, file).and_then(|t| read_version(file, t));
        stack.version_file = Some(join(dir, file));
    }
    refine(index, &mut stack, text);
    stack.files.sort();
    stack.test_frameworks = testing::frameworks_for(index, &stack, text);
    stack
}

/// A tool named explicitly by the manifest.
fn preferred_tool(kind: StackKind, manifest_name: &str, text: &str) -> Option<&'static str> {
    match kind {
        StackKind::Node => {
            let json: serde_json::Value = serde_json::from_str(text).ok()?;
            let pm = json.get("packageManager")?.as_str()?;
            let name = pm.split('@').next()?;
            NODE_TOOLS.iter().copied().find(|t| *t == name)
        }
        StackKind::Java => Some(if manifest_name == "pom.xml" { "maven" } else { "gradle" }),
        _ => None,
    }
}

/// A tool implied by the manifest when no lock file decides.
fn fallback_tool(kind: StackKind, manifest_name: &str, text: &str) -> Option<&'static str> {
    match kind {
        StackKind::Python if manifest::toml_has_table(text, "tool.poetry") => Some("poetry"),
        StackKind::Python if manifest::toml_has_table(text, "tool.uv") => Some("uv"),
        StackKind::Python if manifest_name == "Pipfile" => Some("pipenv"),
        _ => None,
    }
}

/// Kind-specific details read from the manifest.
fn refine(index: &RepoIndex, stack: &mut Stack, text: &str) {
    let dir = stack.dir.clone();
    match stack.kind {
        StackKind::Rust => stack.workspace = manifest::toml_has_table(text, "workspace"),
        StackKind::Node => refine_node(stack, text),
        StackKind::Python => {
            if stack.version.is_none() {
                stack.version =
                    manifest::toml_string(text, "requires-python").and_then(|spec| manifest::version_number(&spec, 2));
            }
            let pinned = index
                .text(&dir, "requirements.txt")
                .is_some_and(manifest::requirements_pinned);
            if stack.tool == "pip" && stack.lockfile.is_none() && pinned {
                stack.lockfile = Some(join(&dir, "requirements.txt"));
            }
        }
        StackKind::Go => {
            stack.version = manifest::go_directive(text);
            stack.version_file = Some(stack.manifest.clone());
        }
        StackKind::Java => {
            stack.workspace = text.contains("<modules>")
                || index
                    .first_of(&dir, &["settings.gradle.kts", "settings.gradle"])
                    .is_some();
            if stack.version.is_none() {
                stack.version = java_version(text);
            }
        }
        StackKind::Ruby => {
            if stack.version.is_none() {
                stack.version = text
                    .lines()
                    .find(|l| l.trim_start().starts_with("ruby "))
                    .and_then(|l| manifest::version_number(l, 3));
            }
        }
        StackKind::Docker => {}
    }
}

fn refine_node(stack: &mut Stack, text: &str) {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if let Some(scripts) = json.get("scripts").and_then(|s| s.as_object()) {
        stack.scripts = scripts
            .iter()
            // `npm init` writes a test script that only fails; it is not a test suite.
            .filter(|(_, cmd)| !cmd.as_str().is_some_and(|c| c.contains("no test specified")))
            .map(|(name, _)| name.clone())
            .collect();
        stack.scripts.sort();
    }
    stack.tool_version = json
        .get("packageManager")
        .and_then(|pm| pm.as_str())
        .and_then(|pm| pm.split_once('@'))
        .filter(|(tool, _)| *tool == stack.tool)
        .map(|(_, version)| version.split('+').next().unwrap_or(version).to_string());
    stack.workspace = json.get("workspaces").is_some() || stack.has_file("pnpm-workspace.yaml");
    if stack.version.is_none() {
        stack.version = json
            .pointer("/engines/node")
            .and_then(|v| v.as_str())
            .and_then(|spec| manifest::version_number(spec, 1));
    }
}

fn java_version(text: &str) -> Option<String> {
    ["maven.compiler.release", "java.version", "maven.compiler.source"]
        .iter()
        .find_map(|tag| manifest::xml_tag(text, tag))
        .or_else(|| {
            let (_, rest) = text.split_once("JavaLanguageVersion.of(")?;
            manifest::version_number(rest.split(')').next()?, 1)
        })
}

fn read_version(file_name: &str, text: &str) -> Option<String> {
    if file_name.ends_with(".toml") {
        manifest::toml_string(text, "channel")
    } else {
        manifest::first_line(text)
    }
}

/// Packages inside a workspace root of the same kind belong to that workspace's build.
fn drop_workspace_members(stacks: &mut Vec<Stack>) {
    let roots: Vec<(StackKind, String)> = stacks
        .iter()
        .filter(|s| s.workspace)
        .map(|s| (s.kind, s.dir.clone()))
        .collect();
    stacks.retain(|s| {
        !roots
            .iter()
            .any(|(kind, dir)| *kind == s.kind && *dir != s.dir && is_under(&s.dir, dir))
    });
}

fn docker_stacks(index: &RepoIndex) -> impl Iterator<Item = Stack> + '_ {
    index
        .files
        .iter()
        .filter(|f| is_dockerfile(f.name()) && !in_fixture_dir(&f.path))
        .map(|f| Stack {
            kind: StackKind::Docker,
            tool: "docker".to_string(),
            dir: split(&f.path).0.to_string(),
            manifest: f.path.clone(),
            lockfile: None,
            tool_version: None,
            workspace: false,
            version: None,
            version_file: None,
            scripts: Vec::new(),
            files: Vec::new(),
            test_frameworks: Vec::new(),
        })
}
