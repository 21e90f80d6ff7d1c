//! Which repositories the webhook acts on, and how: allow/block patterns, drafts, our own slug.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};

use crate::domain::RepoName;

/// A repository pattern: `owner` (every repository of that owner) or `owner/repo`, where `*`
/// matches any run of characters within one part. Matching ignores case, as GitHub does.
#[derive(Clone, Debug)]
pub struct RepoPattern {
    source: String,
    matcher: GlobMatcher,
}

impl RepoPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, repo: &RepoName) -> bool {
        self.matcher.is_match(repo.as_str())
    }
}

impl PartialEq for RepoPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RepoPattern {}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for RepoPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let source = s.trim();
        let valid_part = |p: &str| {
            !p.is_empty() && p.len() <= 100 && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.*".contains(c))
        };
        let glob = match source.split_once('/') {
            None if valid_part(source) => format!("{source}/*"),
            Some((owner, name)) if valid_part(owner) && valid_part(name) => source.to_owned(),
            _ => {
                return Err(format!(
                    "{source:?} is not a repository pattern: expected owner or owner/repo \
                     (letters, digits, '-', '_', '.', '*' as a wildcard)"
                ));
            }
        };
        let matcher = GlobBuilder::new(&glob)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("{source:?} is not a repository pattern: {e}"))?
            .compile_matcher();
        Ok(RepoPattern {
            source: source.to_owned(),
            matcher,
        })
    }
}

/// The routing decisions that come from configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingPolicy {
    /// Repositories to act on; empty means all.
    pub allow: Vec<RepoPattern>,
    /// Repositories never acted on (wins over `allow`).
    pub block: Vec<RepoPattern>,
    /// Analyse draft pull requests where `.autodevops.yml` does not say (`draft_prs`).
    pub analyze_drafts: bool,
    /// The App's slug; our own bot login is `<slug>[bot]`.
    pub app_slug: Option<String>,
}

impl RoutingPolicy {
    /// Reads `GITHUB_REPO_ALLOW`, `GITHUB_REPO_BLOCK` (comma-separated patterns),
    /// `ANALYZE_DRAFT_PRS` (true/false) and `GITHUB_APP_SLUG`. Every problem is returned at
    /// once as (variable, message).
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<RoutingPolicy, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut patterns = |var: &'static str| -> Vec<RepoPattern> {
            let raw = get(var).unwrap_or_default();
            raw.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .filter_map(|p| match p.parse() {
                    Ok(pattern) => Some(pattern),
                    Err(e) => {
                        errors.push((var, e));
                        None
                    }
                })
                .collect()
        };
        let allow = patterns("GITHUB_REPO_ALLOW");
        let block = patterns("GITHUB_REPO_BLOCK");

        let analyze_drafts = match get("ANALYZE_DRAFT_PRS").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) => match v.as_str() {
                "" | "0" | "false" | "no" | "off" => false,
                "1" | "true" | "yes" | "on" => true,
                _ => {
                    errors.push(("ANALYZE_DRAFT_PRS", "must be true or false".to_owned()));
                    false
                }
            },
        };

        let app_slug = get("GITHUB_APP_SLUG")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if let Some(slug) = &app_slug
            && !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.push((
                "GITHUB_APP_SLUG",
                format!("{slug:?} is not an App slug (letters, digits and '-')"),
            ));
        }

        if errors.is_empty() {
            Ok(RoutingPolicy {
                allow,
                block,
                analyze_drafts,
                app_slug,
            })
        } else {
            Err(errors)
        }
    }

    /// [`Self::from_vars`] over the process environment.
    pub fn from_env() -> Result<RoutingPolicy, Vec<(&'static str, String)>> {
        Self::from_vars(&|k| std::env::var(k).ok())
    }

    /// Why `repo` is excluded, or `None` when the webhook may act on it.
    pub fn excludes(&self, repo: &RepoName) -> Option<String> {
        if let Some(p) = self.block.iter().find(|p| p.matches(repo)) {
            return Some(format!(
                "repository {} is blocked by GITHUB_REPO_BLOCK pattern {:?}",
                repo.as_str(),
                p.as_str()
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(repo)) {
            let list: Vec<&str> = self.allow.iter().map(RepoPattern::as_str).collect();
            return Some(format!(
                "repository {} matches no GITHUB_REPO_ALLOW pattern ({})",
                repo.as_str(),
                list.join(", ")
            ));
        }
        None
    }

    /// Our own bot's login, `<slug>[bot]`, when the slug is known.
    pub fn bot_login(&self) -> Option<String> {
        self.app_slug.as_ref().map(|s| format!("{s}[bot]"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn repo(s: &str) -> RepoName {
        RepoName::try_from(s.to_owned()).unwrap()
    }

    fn policy(vars: &[(&str, &str)]) -> Result<RoutingPolicy, Vec<(&'static str, String)>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RoutingPolicy::from_vars(&|k| map.get(k).cloned())
    }

    #[test]
    fn patterns_match_owner_repo_and_globs_ignoring_case() {
        let p: RepoPattern = "acme".parse().unwrap();
        assert!(p.matches(&repo("acme/api")));
        assert!(p.matches(&repo("ACME/Web")));
        assert!(!p.matches(&repo("acme-labs/api")));

        let p: RepoPattern = "acme/*".parse().unwrap();
        assert!(p.matches(&repo("Acme/anything")));
        assert!(!p.matches(&repo("other/anything")));

        let p: RepoPattern = "*/infra-*".parse().unwrap();
        assert!(p.matches(&repo("x/infra-core")));
        assert!(p.matches(&repo("Y/INFRA-web")));
        assert!(!p.matches(&repo("x/core-infra")));

        let p: RepoPattern = "Octo-Org/Hello.World".parse().unwrap();
        assert!(p.matches(&repo("octo-org/hello.world")));
        assert!(!p.matches(&repo("octo-org/hello.worlds")));
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        for bad in ["", "a/b/c", "/x", "x/", "a b", "a/[bc]", "a/b?", "acme/{x,y}"] {
            assert!(bad.parse::<RepoPattern>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_reads_every_variable() {
        let p = policy(&[
            ("GITHUB_REPO_ALLOW", " acme , other/repo ,"),
            ("GITHUB_REPO_BLOCK", "acme/secret-*"),
            ("ANALYZE_DRAFT_PRS", "TRUE"),
            ("GITHUB_APP_SLUG", "autodevops"),
        ])
        .unwrap();
        let allow: Vec<&str> = p.allow.iter().map(RepoPattern::as_str).collect();
        assert_eq!(allow, ["acme", "other/repo"]);
        assert_eq!(p.block.len(), 1);
        assert!(p.analyze_drafts);
        assert_eq!(p.bot_login().as_deref(), Some("autodevops[bot]"));

        assert_eq!(p.excludes(&repo("acme/api")), None);
        assert_eq!(p.excludes(&repo("Other/Repo")), None);
        let blocked = p.excludes(&repo("acme/secret-sauce")).unwrap();
        assert!(blocked.contains("GITHUB_REPO_BLOCK") && blocked.contains("acme/secret-*"));
        let not_allowed = p.excludes(&repo("third/party")).unwrap();
        assert!(not_allowed.contains("GITHUB_REPO_ALLOW") && not_allowed.contains("acme, other/repo"));
    }

    #[test]
    fn defaults_allow_everything() {
        let p = policy(&[]).unwrap();
        assert_eq!(p, RoutingPolicy::default());
        assert_eq!(p.excludes(&repo("any/repo")), None);
        assert_eq!(p.bot_login(), None);
    }

    #[test]
    fn policy_errors_name_each_variable_and_value() {
        let errors = policy(&[
            ("GITHUB_REPO_ALLOW", "good,bad/pat/tern"),
            ("GITHUB_REPO_BLOCK", "x y"),
            ("ANALYZE_DRAFT_PRS", "maybe"),
            ("GITHUB_APP_SLUG", "my app"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = errors.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            vars,
            [
                "GITHUB_REPO_ALLOW",
                "GITHUB_REPO_BLOCK",
                "ANALYZE_DRAFT_PRS",
                "GITHUB_APP_SLUG"
            ]
        );
        assert!(errors[0].1.contains("bad/pat/tern"));
        assert!(errors[1].1.contains("x y"));
        assert!(errors[2].1.contains("true or false"));
        assert!(errors[3].1.contains("my app"));
    }
}
