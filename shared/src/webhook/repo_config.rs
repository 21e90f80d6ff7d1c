//! The per-repository `.autodevops.yml`. A broken file never fails a job: it yields the
//! defaults plus problems saying what is wrong and where.

use std::fmt;

use globset::GlobBuilder;
use serde::{Deserialize, Serialize};

/// The file's name at the repository root.
pub const FILE_NAME: &str = ".autodevops.yml";

/// Larger files are not parsed.
pub const MAX_BYTES: usize = 64 * 1024;

/// A repository's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepoConfig {
    /// `false` turns AutoDevOps off for the repository.
    pub enabled: bool,
    pub features: Features,
    /// Globs of paths the analysis skips (gitignore syntax, relative to the root).
    pub ignore_paths: Vec<String>,
    /// Overrides `ANALYZE_DRAFT_PRS` for this repository when set.
    pub draft_prs: Option<bool>,
    pub ci: CiOptions,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            enabled: true,
            features: Features::default(),
            ignore_paths: Vec::new(),
            draft_prs: None,
            ci: CiOptions::default(),
        }
    }
}

/// What AutoDevOps does on the repository; everything is on by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Features {
    pub analysis: bool,
    pub pr_comment: bool,
    pub check_run: bool,
    pub ci_gen: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            analysis: true,
            pr_comment: true,
            check_run: true,
            ci_gen: true,
        }
    }
}

/// CI generation settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CiOptions {
    pub provider: CiProvider,
    /// The runner label (`runs-on`); the generator's default when unset.
    pub runs_on: Option<String>,
    /// The branch the workflow is proposed on; the generator's default when unset.
    pub branch: Option<String>,
}

/// Supported CI systems.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiProvider {
    #[default]
    GithubActions,
}

/// Something wrong in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{FILE_NAME} line {line}: {}", self.message),
            None => write!(f, "{FILE_NAME}: {}", self.message),
        }
    }
}

impl ConfigProblem {
    fn new(line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigProblem {
            line,
            message: message.into(),
        }
    }
}

/// Parses `.autodevops.yml`. An empty file means the defaults. A file that is too large, not
/// YAML, or has an unknown key or a wrong type yields the defaults and the problem; an invalid
/// `ignore_paths` glob or empty `ci` value is dropped with a problem, keeping the rest.
pub fn parse(text: &str) -> (RepoConfig, Vec<ConfigProblem>) {
    if text.len() > MAX_BYTES {
        let problem = ConfigProblem::new(
            None,
            format!(
                "file too large ({} bytes; the limit is {MAX_BYTES}): using the defaults",
                text.len()
            ),
        );
        return (RepoConfig::default(), vec![problem]);
    }
    if is_blank(text) {
        return (RepoConfig::default(), Vec::new());
    }
    let mut config: RepoConfig = match serde_norway::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let message =
                strip_location(&e.to_string()).replace("struct RepoConfig", "a mapping of settings (key: value)");
            let problem = ConfigProblem::new(line, format!("{message}: using the defaults"));
            return (RepoConfig::default(), vec![problem]);
        }
    };
    let mut problems = Vec::new();
    config.ignore_paths.retain(|glob| match valid_glob(glob) {
        Ok(()) => true,
        Err(e) => {
            problems.push(ConfigProblem::new(None, format!("ignore_paths: {e}: entry ignored")));
            false
        }
    });
    for (key, value) in [
        ("ci.runs_on", &mut config.ci.runs_on),
        ("ci.branch", &mut config.ci.branch),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            problems.push(ConfigProblem::new(None, format!("{key} is empty: using the default")));
            *value = None;
        }
    }
    (config, problems)
}

/// Nothing but blank space and comments (serde cannot read an empty document into a struct).
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    }) || text.trim() == "~"
        || text.trim() == "null"
}

/// The message without serde_norway's trailing "at line L column C" (the line is kept apart).
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

fn valid_glob(glob: &str) -> Result<(), String> {
    if glob.trim().is_empty() {
        return Err("an empty glob".to_owned());
    }
    GlobBuilder::new(glob.trim_start_matches('!'))
        .literal_separator(true)
        .build()
        .map(|_| ())
        .map_err(|e| format!("{glob:?} is not a valid glob ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_is_read() {
        let text = "\
# AutoDevOps settings
enabled: true
features:
  analysis: true
  pr_comment: false
  check_run: true
  ci_gen: false
ignore_paths:
  - vendor/**
  - \"*.min.js\"
draft_prs: true
ci:
  provider: github_actions
  runs_on: ubuntu-24.04
  branch: autodevops/ci
";
        let (config, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            config,
            RepoConfig {
                enabled: true,
                features: Features {
                    analysis: true,
                    pr_comment: false,
                    check_run: true,
                    ci_gen: false,
                },
                ignore_paths: vec!["vendor/**".into(), "*.min.js".into()],
                draft_prs: Some(true),
                ci: CiOptions {
                    provider: CiProvider::GithubActions,
                    runs_on: Some("ubuntu-24.04".into()),
                    branch: Some("autodevops/ci".into()),
                },
            }
        );
    }

    #[test]
    fn missing_keys_take_defaults() {
        let (config, problems) = parse("features:\n  ci_gen: false\n");
        assert!(problems.is_empty());
        assert!(config.enabled && config.features.analysis && !config.features.ci_gen);
        assert_eq!(config.ci.provider, CiProvider::GithubActions);

        for blank in ["", "\n", "# nothing yet\n", "---\n", "~"] {
            assert_eq!(parse(blank), (RepoConfig::default(), Vec::new()), "{blank:?}");
        }
    }

    #[test]
    fn a_misspelt_key_gives_defaults_and_names_key_and_line() {
        let (config, problems) = parse("enabled: false\nfeatures:\n  analysys: false\n");
        assert_eq!(config, RepoConfig::default());
        assert_eq!(problems.len(), 1);
        let p = &problems[0];
        assert_eq!(p.line, Some(3), "{p:?}");
        assert!(p.message.contains("analysys"), "{p}");
        assert!(p.message.contains("analysis"), "lists the valid keys: {p}");
        assert!(p.to_string().starts_with(".autodevops.yml line 3: "), "{p}");
    }

    #[test]
    fn a_wrong_type_gives_defaults_and_says_what_was_expected() {
        let (config, problems) = parse("enabled: sometimes\n");
        assert_eq!(config, RepoConfig::default());
        assert_eq!(problems[0].line, Some(1));
        assert!(problems[0].message.contains("enabled"), "{}", problems[0]);
        assert!(problems[0].message.contains("bool"), "{}", problems[0]);

        let (_, problems) = parse("ci:\n  provider: circleci\n");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("circleci"), "{}", problems[0]);
        assert!(problems[0].message.contains("github_actions"), "{}", problems[0]);

        let (_, problems) = parse("ignore_paths: vendor\n");
        assert!(problems[0].message.contains("ignore_paths"), "{}", problems[0]);
        assert!(problems[0].message.contains("sequence"), "{}", problems[0]);
    }

    #[test]
    fn bad_yaml_gives_defaults_and_the_line() {
        let (config, problems) = parse("enabled: false\nci:\n  branch: \"unterminated\n");
        assert_eq!(config, RepoConfig::default());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].line.is_some_and(|l| l >= 3), "{:?}", problems[0]);
        assert!(problems[0].message.contains("quoted scalar"), "{}", problems[0]);

        let (config, problems) = parse("- just\n- a list\n");
        assert_eq!(config, RepoConfig::default());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("a mapping of settings"), "{}", problems[0]);
    }

    #[test]
    fn a_file_over_64_kib_is_not_parsed() {
        let text = format!("enabled: false\n{}", "# padding\n".repeat(7000));
        assert!(text.len() > MAX_BYTES);
        let (config, problems) = parse(&text);
        assert_eq!(config, RepoConfig::default());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("file too large"), "{}", problems[0]);
    }

    #[test]
    fn invalid_globs_and_empty_values_are_dropped_alone() {
        let (config, problems) =
            parse("enabled: false\nignore_paths: [\"docs/**\", \"src/[a-\", \"\"]\nci:\n  runs_on: \"  \"\n");
        assert!(!config.enabled, "the rest of the file still applies");
        assert_eq!(config.ignore_paths, ["docs/**"]);
        assert_eq!(config.ci.runs_on, None);
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("src/[a-"), "{messages:?}");
        assert!(messages[1].contains("empty glob"), "{messages:?}");
        assert!(messages[2].contains("ci.runs_on"), "{messages:?}");
    }
}
