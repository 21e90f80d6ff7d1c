//! Routes every GitHub example payload under tests/fixtures/webhooks and checks the outcome
//! against a table keyed by file name (all files must be in the table, and vice versa).

use std::collections::BTreeMap;
use std::path::PathBuf;

use autodevops_shared::domain::JobKind;
use autodevops_shared::webhook::{Route, RoutingPolicy, Trigger, route};
use serde_json::Value;

const PR_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const PUSH_SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const RERUN_SHA: &str = "d6fde92930d4715a2b49857d24b940956b26d2d3";

#[derive(Clone, Debug)]
enum Expect {
    /// Accepted without jobs (ping).
    NoJobs,
    /// Ignored; the reason contains this text.
    Ignored(&'static str),
    /// One job on a repository.
    Job {
        kind: JobKind,
        installation_id: i64,
        repo: &'static str,
        head_sha: &'static str,
        git_ref: &'static str,
        pr_number: Option<i64>,
        trigger: Trigger,
    },
    /// One installation-wide sync.
    Sync {
        installation_id: i64,
        trigger: Trigger,
        actor: &'static str,
    },
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/webhooks")
}

fn pr_job(installation_id: i64) -> Expect {
    Expect::Job {
        kind: JobKind::Analysis,
        installation_id,
        repo: "Codertocat/Hello-World",
        head_sha: PR_SHA,
        git_ref: "refs/pull/2/head",
        pr_number: Some(2),
        trigger: Trigger::PullRequest { draft: false },
    }
}

fn install(id: i64, action: &str, actor: &'static str) -> Expect {
    Expect::Sync {
        installation_id: id,
        trigger: Trigger::Installation { action: action.into() },
        actor,
    }
}

fn repos(id: i64, actor: &'static str) -> Expect {
    Expect::Sync {
        installation_id: id,
        trigger: Trigger::InstallationRepositories,
        actor,
    }
}

fn expectations() -> BTreeMap<&'static str, Expect> {
    use Expect::*;
    let no_installation = "no installation id";
    let not_a_pr = "comment on issue #1, not on a pull request";
    let push_job = Job {
        kind: JobKind::Analysis,
        installation_id: 1,
        repo: "Codertocat/Hello-World",
        head_sha: PUSH_SHA,
        git_ref: "refs/heads/master",
        pr_number: None,
        trigger: Trigger::Push,
    };
    let rerun = || Job {
        kind: JobKind::Analysis,
        installation_id: 1,
        repo: "github/hello-world",
        head_sha: RERUN_SHA,
        git_ref: "refs/heads/master",
        pr_number: None,
        trigger: Trigger::Rerun,
    };
    BTreeMap::from([
        ("check_run/01-created.json", Ignored(r#"check_run action "created""#)),
        (
            "check_run/02-completed.json",
            Ignored(r#"check_run action "completed""#),
        ),
        (
            "check_run/03-completed.json",
            Ignored(r#"check_run action "completed""#),
        ),
        (
            "check_run/04-completed.json",
            Ignored(r#"check_run action "completed""#),
        ),
        ("check_run/05-created.json", Ignored(r#"check_run action "created""#)),
        ("check_run/06-created.json", Ignored(r#"check_run action "created""#)),
        (
            "check_run/07-requested_action.json",
            Ignored(r#"check_run action "requested_action""#),
        ),
        ("check_run/08-rerequested.json", rerun()),
        ("check_run/09-rerequested.json", rerun()),
        ("installation/01-deleted.json", install(2, "deleted", "octocat")),
        ("installation/02-created.json", install(957387, "created", "Codertocat")),
        ("installation/03-created.json", install(957387, "created", "Codertocat")),
        ("installation/04-deleted.json", install(2, "deleted", "octocat")),
        (
            "installation/05-new_permissions_accepted.json",
            install(957387, "new_permissions_accepted", "Codertocat"),
        ),
        (
            "installation/06-suspend.json",
            install(16598467, "suspend", "Codertocat"),
        ),
        (
            "installation/07-unsuspend.json",
            install(16598467, "unsuspend", "Codertocat"),
        ),
        ("installation_repositories/01-added.json", repos(957387, "Codertocat")),
        ("installation_repositories/02-added.json", repos(957387, "Codertocat")),
        ("installation_repositories/03-removed.json", repos(2, "octocat")),
        ("issue_comment/01-created.json", Ignored(not_a_pr)),
        ("issue_comment/02-created.json", Ignored(not_a_pr)),
        ("issue_comment/03-created.json", Ignored(not_a_pr)),
        ("issue_comment/04-created.json", Ignored(not_a_pr)),
        ("issue_comment/05-created.json", Ignored(not_a_pr)),
        ("issue_comment/06-deleted.json", Ignored("comment deleted")),
        ("issue_comment/07-deleted.json", Ignored("comment deleted")),
        ("issue_comment/08-edited.json", Ignored("comment edited")),
        ("issue_comment/09-edited.json", Ignored("comment edited")),
        ("ping/01-repository.json", NoJobs),
        ("ping/02-repository.json", NoJobs),
        ("ping/03-repository.json", NoJobs),
        ("ping/04-organization.json", NoJobs),
        ("pull_request/01-opened.json", Ignored(no_installation)),
        ("pull_request/02-assigned.json", Ignored(r#"action "assigned""#)),
        ("pull_request/03-assigned.json", Ignored(r#"action "assigned""#)),
        ("pull_request/04-closed.json", Ignored(r#"action "closed""#)),
        ("pull_request/05-closed.json", Ignored(r#"action "closed""#)),
        (
            "pull_request/06-converted_to_draft.json",
            Ignored(r#"action "converted_to_draft""#),
        ),
        (
            "pull_request/07-converted_to_draft.json",
            Ignored(r#"action "converted_to_draft""#),
        ),
        (
            "pull_request/08-converted_to_draft.json",
            Ignored(r#"action "converted_to_draft""#),
        ),
        ("pull_request/09-labeled.json", Ignored(r#"action "labeled""#)),
        ("pull_request/10-labeled.json", Ignored(r#"action "labeled""#)),
        ("pull_request/11-locked.json", Ignored(r#"action "locked""#)),
        ("pull_request/12-locked.json", Ignored(r#"action "locked""#)),
        ("pull_request/13-opened.json", pr_job(1)),
        ("pull_request/14-opened.json", pr_job(1)),
        ("pull_request/15-opened.json", pr_job(1)),
        ("pull_request/16-ready_for_review.json", Ignored(no_installation)),
        ("pull_request/17-ready_for_review.json", pr_job(1)),
        ("pull_request/18-ready_for_review.json", Ignored(no_installation)),
        ("pull_request/19-reopened.json", pr_job(1)),
        ("pull_request/20-reopened.json", pr_job(1)),
        (
            "pull_request/21-review_request_removed.json",
            Ignored(r#"action "review_request_removed""#),
        ),
        (
            "pull_request/22-review_requested.json",
            Ignored(r#"action "review_requested""#),
        ),
        ("pull_request/23-synchronize.json", pr_job(1)),
        ("pull_request/24-unassigned.json", Ignored(r#"action "unassigned""#)),
        ("pull_request/25-unassigned.json", Ignored(r#"action "unassigned""#)),
        ("pull_request/26-unlabeled.json", Ignored(r#"action "unlabeled""#)),
        ("pull_request/27-unlabeled.json", Ignored(r#"action "unlabeled""#)),
        ("pull_request/28-unlocked.json", Ignored(r#"action "unlocked""#)),
        ("pull_request/29-unlocked.json", Ignored(r#"action "unlocked""#)),
        ("push/01-tag-created.json", Ignored("tag push (simple-tag)")),
        ("push/02-tag-deleted.json", Ignored("tag push (simple-tag)")),
        ("push/03-tag-deleted.json", Ignored("tag push (simple-tag)")),
        ("push/04-tag-deleted.json", Ignored("tag push (simple-tag)")),
        ("push/05-branch-created.json", push_job.clone()),
        ("push/06-branch-created.json", push_job),
        ("push/07-tag-deleted.json", Ignored("tag push (simple-tag)")),
    ])
}

/// Every `<event>/<file>.json` under the fixtures directory, as (key, event, payload).
fn fixtures() -> Vec<(String, String, Value)> {
    let dir = fixtures_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let event_dir = entry.unwrap().path();
        if !event_dir.is_dir() {
            continue;
        }
        let event = event_dir.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&event_dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let payload: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((format!("{event}/{name}"), event.clone(), payload));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_fixture_routes_as_expected() {
    let policy = RoutingPolicy::default();
    let table = expectations();
    let all = fixtures();
    assert_eq!(all.len(), 68, "the fixture set changed: update the table");
    let keys: Vec<&str> = all.iter().map(|(k, _, _)| k.as_str()).collect();
    let table_keys: Vec<&str> = table.keys().copied().collect();
    assert_eq!(keys, table_keys, "every fixture has exactly one expectation");

    for (key, event, payload) in &all {
        let got = route(event, payload, &policy);
        // The webhook handler routes the raw body: the same decision.
        let raw = serde_json::to_vec(payload).unwrap();
        assert_eq!(route(event, &raw[..], &policy), got, "{key}: routed from bytes");
        match (&table[key.as_str()], &got) {
            (Expect::NoJobs, Route::Accept { jobs, reply }) => {
                assert!(jobs.is_empty() && reply.is_none(), "{key}: {got:?}");
            }
            (Expect::Ignored(text), Route::Ignore { reason }) => {
                assert!(reason.contains(text), "{key}: reason {reason:?} lacks {text:?}");
            }
            (
                Expect::Job {
                    kind,
                    installation_id,
                    repo,
                    head_sha,
                    git_ref,
                    pr_number,
                    trigger,
                },
                Route::Accept { jobs, reply: None },
            ) => {
                assert_eq!(jobs.len(), 1, "{key}: {got:?}");
                let job = &jobs[0];
                assert_eq!(job.kind, *kind, "{key}");
                assert_eq!(job.installation_id, *installation_id, "{key}");
                assert_eq!(job.repo.as_ref().map(|r| r.as_str()), Some(*repo), "{key}");
                assert_eq!(job.head_sha.as_deref(), Some(*head_sha), "{key}");
                assert_eq!(job.git_ref.as_deref(), Some(*git_ref), "{key}");
                assert_eq!(job.pr_number, *pr_number, "{key}");
                assert_eq!(&job.trigger, trigger, "{key}");
                assert_eq!(
                    job.actor,
                    payload["sender"]["login"].as_str().map(String::from),
                    "{key}"
                );
                assert_eq!(
                    job.default_branch.as_deref(),
                    payload["repository"]["default_branch"].as_str(),
                    "{key}"
                );
            }
            (
                Expect::Sync {
                    installation_id,
                    trigger,
                    actor,
                },
                Route::Accept { jobs, reply: None },
            ) => {
                assert_eq!(jobs.len(), 1, "{key}: {got:?}");
                let job = &jobs[0];
                assert_eq!(job.kind, JobKind::Sync, "{key}");
                assert_eq!(job.installation_id, *installation_id, "{key}");
                assert_eq!(job.repo, None, "{key}: installation-wide");
                assert_eq!((job.head_sha.as_ref(), job.pr_number), (None, None), "{key}");
                assert_eq!(&job.trigger, trigger, "{key}");
                assert_eq!(job.actor.as_deref(), Some(*actor), "{key}");
            }
            (expected, got) => panic!("{key}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn every_fixture_is_ignored_when_sent_by_a_bot_except_installations() {
    let policy = RoutingPolicy::default();
    for (key, event, mut payload) in fixtures() {
        payload["sender"]["login"] = "dependabot[bot]".into();
        payload["sender"]["type"] = "Bot".into();
        let got = route(&event, &payload, &policy);
        match event.as_str() {
            "installation" | "installation_repositories" => {
                assert!(
                    matches!(&got, Route::Accept { jobs, .. } if jobs.len() == 1),
                    "{key}: {got:?}"
                )
            }
            "ping" => assert!(matches!(got, Route::Accept { .. }), "{key}: {got:?}"),
            _ => assert_eq!(got.reason(), Some("event sent by a bot (dependabot[bot])"), "{key}"),
        }
    }
}

#[test]
fn every_repository_fixture_obeys_the_block_list() {
    let policy =
        RoutingPolicy::from_vars(&|k| (k == "GITHUB_REPO_BLOCK").then(|| "codertocat,github/*".to_owned())).unwrap();
    for (key, event, payload) in fixtures() {
        let Some(repo) = payload["repository"]["full_name"].as_str() else {
            continue;
        };
        if !matches!(event.as_str(), "push" | "pull_request" | "issue_comment" | "check_run") {
            continue;
        }
        let got = route(&event, &payload, &policy);
        let reason = got.reason().unwrap_or_else(|| panic!("{key}: {got:?}"));
        if repo.eq_ignore_ascii_case("electron/electron") {
            assert!(!reason.contains("GITHUB_REPO_BLOCK"), "{key}: {reason}");
        } else {
            assert!(
                reason.contains(&format!("repository {repo} is blocked by GITHUB_REPO_BLOCK")),
                "{key}: {reason}"
            );
        }
    }
}
