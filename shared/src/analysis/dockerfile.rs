//! Minimal Dockerfile reader: stages, base images and the effective user.

struct Stage {
    image: String,
    alias: Option<String>,
    /// Last `USER` of the stage.
    user: Option<String>,
}

/// Logical instructions (continuation lines joined, comments dropped) as (KEYWORD, arguments).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .trim()
                    .split_once(char::is_whitespace)
                    .unwrap_or((current.trim(), ""));
                out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for (keyword, args) in instructions(text) {
        match keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                let alias = match words.as_slice() {
                    [_, as_kw, alias, ..] if as_kw.eq_ignore_ascii_case("as") => Some(alias.to_string()),
                    _ => None,
                };
                stages.push(Stage {
                    image: words.first().unwrap_or(&"").to_string(),
                    alias,
                    user: None,
                });
            }
            "USER" => {
                if let Some(stage) = stages.last_mut() {
                    stage.user = Some(args);
                }
            }
            _ => {}
        }
    }
    stages
}

/// Index of an earlier stage whose alias is `image`.
fn earlier_stage(stages: &[Stage], before: usize, image: &str) -> Option<usize> {
    stages[..before]
        .iter()
        .rposition(|s| s.alias.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(image)))
}

fn effective_user(stages: &[Stage], i: usize) -> Option<&str> {
    let stage = &stages[i];
    stage
        .user
        .as_deref()
        .or_else(|| earlier_stage(stages, i, &stage.image).and_then(|parent| effective_user(stages, parent)))
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name == "root" || name == "0"
}

/// Whether the final stage runs as root: no `USER` (also not inherited from an earlier stage
/// it is based on), or `USER root` / `USER 0`. A file without `FROM` is not judged.
pub(crate) fn runs_as_root(text: &str) -> bool {
    let stages = stages(text);
    if stages.is_empty() {
        return false;
    }
    effective_user(&stages, stages.len() - 1).is_none_or(is_root)
}

/// Base images without a tag or digest, or tagged `latest` (excluding `scratch`, build
/// arguments and references to earlier stages).
pub(crate) fn unpinned_images(text: &str) -> Vec<String> {
    let stages = stages(text);
    stages
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            !s.image.is_empty()
                && s.image != "scratch"
                && !s.image.contains('$')
                && earlier_stage(&stages, *i, &s.image).is_none()
                && !is_pinned(&s.image)
        })
        .map(|(_, s)| s.image.clone())
        .collect()
}

fn is_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(_, tag)| tag != "latest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_in_final_stage() {
        assert!(runs_as_root("FROM alpine:3.20\nRUN echo hi\n"));
        assert!(runs_as_root("FROM alpine:3.20\nUSER root\n"));
        assert!(runs_as_root("FROM alpine:3.20\nUSER 0:0\n"));
        assert!(!runs_as_root("FROM alpine:3.20\nUSER app\n"));
        assert!(!runs_as_root("from alpine:3.20\nuser 1000\n"));
        // USER only in the build stage does not count for the final image ...
        assert!(runs_as_root(
            "FROM rust:1.80 AS build\nUSER builder\nFROM debian:12-slim\nCOPY --from=build /a /a\n"
        ));
        // ... unless the final stage is based on it.
        assert!(!runs_as_root(
            "FROM node:20 AS base\nUSER node\nFROM base\nCMD [\"node\"]\n"
        ));
        assert!(!runs_as_root("# no FROM here\n"));
    }

    #[test]
    fn continuation_lines_and_comments() {
        let text = "FROM alpine:3.20\nRUN apk add \\\n  # comment\n  curl \\\n  git\nUSER nobody\n";
        assert!(!runs_as_root(text));
        assert!(unpinned_images(text).is_empty());
    }

    #[test]
    fn unpinned_base_images() {
        let text = "FROM --platform=$BUILDPLATFORM node AS build\nFROM registry:5000/team/app:latest\nFROM build AS final\nFROM scratch\nFROM python:3.12@sha256:abc\nFROM ${BASE}\nFROM localhost:5000/x:1.0\n";
        assert_eq!(unpinned_images(text), vec!["node", "registry:5000/team/app:latest"]);
    }
}
