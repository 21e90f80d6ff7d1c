//! Existing CI configuration files.

use super::index::RepoIndex;
use super::{CiConfig, CiProvider};

enum Pattern {
    /// Exact path relative to the root.
    Exact(&'static str),
    /// YAML files directly inside this directory.
    YamlIn(&'static str),
}

const PATTERNS: &[(Pattern, CiProvider)] = &[
    (Pattern::YamlIn(".github/workflows"), CiProvider::GithubActions),
    (Pattern::Exact(".gitlab-ci.yml"), CiProvider::GitlabCi),
    (Pattern::Exact(".gitlab-ci.yaml"), CiProvider::GitlabCi),
    (Pattern::Exact(".circleci/config.yml"), CiProvider::Circleci),
    (Pattern::Exact(".circleci/config.yaml"), CiProvider::Circleci),
    (Pattern::Exact(".travis.yml"), CiProvider::Travis),
    (Pattern::Exact("Jenkinsfile"), CiProvider::Jenkins),
    (Pattern::Exact("azure-pipelines.yml"), CiProvider::AzurePipelines),
    (Pattern::Exact("azure-pipelines.yaml"), CiProvider::AzurePipelines),
    (
        Pattern::Exact("bitbucket-pipelines.yml"),
        CiProvider::BitbucketPipelines,
    ),
    (Pattern::Exact(".drone.yml"), CiProvider::Drone),
    (Pattern::YamlIn(".buildkite"), CiProvider::Buildkite),
    (Pattern::Exact("appveyor.yml"), CiProvider::Appveyor),
    (Pattern::Exact(".appveyor.yml"), CiProvider::Appveyor),
];

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == *p,
            Self::YamlIn(dir) => path
                .strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/') && (name.ends_with(".yml") || name.ends_with(".yaml"))),
        }
    }
}

pub(crate) fn detect(index: &RepoIndex) -> Vec<CiConfig> {
    let mut found: Vec<CiConfig> = index
        .files
        .iter()
        .filter_map(|f| {
            PATTERNS
                .iter()
                .find(|(pattern, _)| pattern.matches(&f.path))
                .map(|(_, provider)| CiConfig {
                    provider: *provider,
                    path: f.path.clone(),
                })
        })
        .collect();
    found.sort();
    found
}
