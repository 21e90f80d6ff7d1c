//! Markdown for GitHub: the check run's summary, its annotations, the PR's comment and the CI
//! pull request's body.

use serde_json::Value;
use shared::analysis::{AnalysisReport, Finding, Severity};
use shared::github::Annotation;

/// The hidden marker that identifies AutoDevOps's one comment on a pull request.
pub const COMMENT_MARKER: &str = "<!-- autodevops:pr-report -->";

/// The check run's conclusion: `failure` when a high-severity finding stands, `neutral` for
/// medium ones, `success` otherwise.
pub fn conclusion(findings: &[Finding]) -> &'static str {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::High) => "failure",
        Some(Severity::Medium) => "neutral",
        _ => "success",
    }
}

/// One line saying what was found.
pub fn title(findings: &[Finding]) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    match findings.len() {
        0 => "No findings".to_owned(),
        n => format!(
            "{n} finding{}: {} high, {} medium, {} low, {} info",
            if n == 1 { "" } else { "s" },
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low),
            count(Severity::Info)
        ),
    }
}

fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

/// Markdown text is built from our own findings; paths come from the repository, so they are
/// shown as code and stripped of backticks and line breaks.
fn code(s: &str) -> String {
    format!("`{}`", s.replace(['`', '\n', '\r'], ""))
}

/// The report as Markdown: stacks, languages, findings, the model's review and what was
/// sent to it, and configuration problems.
pub fn summary(report: &AnalysisReport, result: &Value, config_problems: &[String]) -> String {
    let mut out = String::new();
    let stacks: Vec<String> = report
        .stacks
        .iter()
        .map(|s| format!("{} ({})", s.kind.as_str(), code(&s.manifest)))
        .collect();
    let languages: Vec<String> = report
        .languages
        .iter()
        .take(6)
        .map(|l| format!("{} ({} files)", l.name, l.files))
        .collect();
    out.push_str(&format!(
        "**Languages:** {}\n\n**Stacks:** {}\n\n**CI:** {}\n\n",
        if languages.is_empty() {
            "none detected".into()
        } else {
            languages.join(", ")
        },
        if stacks.is_empty() {
            "none detected".into()
        } else {
            stacks.join(", ")
        },
        if report.ci.is_empty() {
            "none found".to_owned()
        } else {
            report.ci.iter().map(|c| code(&c.path)).collect::<Vec<_>>().join(", ")
        }
    ));
    if report.findings.is_empty() {
        out.push_str("No findings.\n");
    } else {
        out.push_str("| severity | finding | where |\n|---|---|---|\n");
        for f in &report.findings {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                severity_label(f.severity),
                f.message.replace(['|', '\n'], " "),
                f.path.as_deref().map(code).unwrap_or_default()
            ));
        }
    }
    if let Some(review) = result.get("review").filter(|r| !r.is_null()) {
        let text = review
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| review.to_string());
        out.push_str(&format!(
            "\n**Model review** ({}):\n\n{}\n",
            result["model"].as_str().unwrap_or("model"),
            text.chars().take(4000).collect::<String>()
        ));
    }
    if !config_problems.is_empty() {
        out.push_str("\n**`.autodevops.yml` problems** (defaults used):\n");
        for p in config_problems {
            out.push_str(&format!("- {}\n", p.replace('\n', " ")));
        }
    }
    out
}

/// Findings with a path become annotations (GitHub shows them on the files).
pub fn annotations(findings: &[Finding]) -> Vec<Annotation> {
    findings
        .iter()
        .filter_map(|f| {
            let path = f.path.clone()?;
            Some(Annotation {
                path,
                start_line: 1,
                end_line: 1,
                annotation_level: match f.severity {
                    Severity::High => "failure",
                    Severity::Medium => "warning",
                    _ => "notice",
                }
                .to_owned(),
                message: f.message.clone(),
                title: Some(f.code.clone()),
            })
        })
        .collect()
}

/// The pull request's one AutoDevOps comment.
pub fn pr_comment(sha: &str, summary: &str, check_url: Option<&str>) -> String {
    let short = &sha[..sha.len().min(7)];
    let mut out = format!("{COMMENT_MARKER}\n### AutoDevOps analysis of {short}\n\n{summary}");
    if let Some(url) = check_url {
        out.push_str(&format!("\nDetails: {url}\n"));
    }
    out.push_str(
        "\n<sub>Updated on every push. Commands: `/autodevops analyze`, `/autodevops ci`, `/autodevops help`.</sub>\n",
    );
    out
}

/// The CI pull request's body: what was generated, the generator's notes and — when a model
/// reviewed the workflow — its summary and notes (`result.review`).
pub fn ci_pr_body(path: &str, sha: &str, result: &Value) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    let notes: Vec<String> = result["workflow"]["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(|s| format!("- {}", one_line(s))))
        .collect();
    let mut out = format!(
        "AutoDevOps generated {} from the stacks it found at {sha}.\n\n{}\n",
        code(path),
        if notes.is_empty() {
            "No notes.".to_owned()
        } else {
            notes.join("\n")
        }
    );
    if let Some(review) = result.get("review").filter(|r| r.is_object()) {
        out.push_str(&format!(
            "\n**Model review** ({}):\n\n",
            result["model"].as_str().unwrap_or("model")
        ));
        if let Some(summary) = review["summary"].as_str() {
            out.push_str(&format!("{}\n\n", summary.chars().take(2000).collect::<String>()));
        }
        for n in review["notes"].as_array().into_iter().flatten().take(30) {
            let text = n["note"].as_str().map_or_else(|| n.to_string(), str::to_owned);
            let severity = n["severity"].as_str().unwrap_or("info");
            out.push_str(&format!(
                "- **{}** {}\n",
                one_line(severity).chars().take(10).collect::<String>(),
                one_line(&text).chars().take(500).collect::<String>()
            ));
        }
    }
    out.push_str("\nReview it before merging; reruns update this pull request.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, path: Option<&str>) -> Finding {
        Finding {
            code: "x".into(),
            severity,
            message: "msg | with pipe".into(),
            path: path.map(str::to_owned),
        }
    }

    #[test]
    fn conclusion_follows_the_worst_finding() {
        assert_eq!(conclusion(&[]), "success");
        assert_eq!(conclusion(&[finding(Severity::Low, None)]), "success");
        assert_eq!(conclusion(&[finding(Severity::Medium, None)]), "neutral");
        assert_eq!(
            conclusion(&[finding(Severity::Low, None), finding(Severity::High, None)]),
            "failure"
        );
    }

    #[test]
    fn annotations_only_for_findings_with_a_path() {
        let a = annotations(&[
            finding(Severity::High, Some("Dockerfile")),
            finding(Severity::Low, None),
        ]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].annotation_level, "failure");
        assert_eq!(a[0].path, "Dockerfile");
    }

    #[test]
    fn ci_body_lists_generator_and_model_notes() {
        let offline = serde_json::json!({ "workflow": { "notes": ["rust: no tests found"] }, "model": "offline" });
        let body = ci_pr_body(".github/workflows/ci.yml", "abc", &offline);
        assert!(body.contains("`.github/workflows/ci.yml`") && body.contains("- rust: no tests found"));
        assert!(!body.contains("Model review"));
        let reviewed = serde_json::json!({
            "workflow": { "notes": [] },
            "model": "openai/gpt",
            "review": { "summary": "Mostly right.", "notes": [{ "severity": "medium", "note": "Cache the\ncargo registry" }] }
        });
        let body = ci_pr_body("ci.yml", "abc", &reviewed);
        assert!(body.contains("No notes."));
        assert!(body.contains("**Model review** (openai/gpt)") && body.contains("Mostly right."));
        assert!(body.contains("- **medium** Cache the cargo registry"), "{body}");
    }

    #[test]
    fn comment_carries_the_marker_and_escapes_table_cells() {
        let report = AnalysisReport {
            languages: vec![],
            stacks: vec![],
            tests: Default::default(),
            ci: vec![],
            findings: vec![finding(Severity::High, Some("a`b"))],
            summary: Default::default(),
        };
        let body = pr_comment("0123456789abcdef", &summary(&report, &Value::Null, &[]), None);
        assert!(body.starts_with(COMMENT_MARKER));
        assert!(body.contains("0123456"));
        assert!(body.contains("msg   with pipe"));
        assert!(body.contains("`ab`"));
    }
}
