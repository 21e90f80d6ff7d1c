//! What a webhook delivery leads to: pure decisions over the payload, no I/O, so the webhook
//! answers in milliseconds. The API creates jobs from [`Route::Accept`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use super::command::Command;
use super::command::{self, HELP, Parsed};
use super::payload::{CheckRunEvent, Envelope, IssueCommentEvent, Payload, PullRequestEvent, PushEvent, Repository};
pub use super::policy::RoutingPolicy;
use crate::domain::{JobKind, RepoName};

/// The outcome of routing one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome")]
pub enum Route {
    /// Act on it: create these jobs (none for `ping`) and post `reply` (help text) if set.
    #[serde(rename = "accepted")]
    Accept {
        jobs: Vec<JobIntent>,
        reply: Option<String>,
    },
    /// Record it and do nothing; `reason` is for people.
    #[serde(rename = "ignored")]
    Ignore { reason: String },
}

impl Route {
    fn ignore(reason: impl Into<String>) -> Route {
        Route::Ignore { reason: reason.into() }
    }

    fn jobs(jobs: Vec<JobIntent>) -> Route {
        Route::Accept { jobs, reply: None }
    }

    /// `"accepted"` or `"ignored"`, as recorded for a delivery.
    pub fn outcome(&self) -> &'static str {
        match self {
            Route::Accept { .. } => "accepted",
            Route::Ignore { .. } => "ignored",
        }
    }

    /// The reason of an ignored delivery.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Route::Accept { .. } => None,
            Route::Ignore { reason } => Some(reason),
        }
    }
}

/// Why a job was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    Push,
    PullRequest {
        /// A draft: analysed only where `.autodevops.yml`'s `draft_prs` (else
        /// `ANALYZE_DRAFT_PRS`) allows it, decided at job time.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        draft: bool,
    },
    Comment {
        command: Command,
    },
    Installation {
        action: String,
    },
    InstallationRepositories,
    /// A check run's "Re-run" button.
    Rerun,
}

/// A job the delivery asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIntent {
    pub kind: JobKind,
    pub installation_id: i64,
    /// `None` for an installation-wide sync.
    pub repo: Option<RepoName>,
    /// The commit to work on; `None` means the worker looks it up (e.g. a PR's current head).
    pub head_sha: Option<String>,
    /// `refs/heads/<branch>` for pushes and check runs, `refs/pull/<n>/head` for pull requests.
    pub git_ref: Option<String>,
    pub pr_number: Option<i64>,
    pub trigger: Trigger,
    /// The sender's login.
    pub actor: Option<String>,
    pub default_branch: Option<String>,
}

/// Where a reply to a comment command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTarget {
    pub installation_id: i64,
    pub repo: RepoName,
    pub issue_number: i64,
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";
const PR_ACTIONS: [&str; 4] = ["opened", "synchronize", "reopened", "ready_for_review"];
const INSTALLATION_ACTIONS: [&str; 5] = ["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"];
const WRITE_ASSOCIATIONS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];

/// Decides what a delivery of `event` (the X-GitHub-Event header) leads to.
pub fn route<P: Payload + ?Sized>(event: &str, payload: &P, policy: &RoutingPolicy) -> Route {
    if !handled(event) {
        return unhandled(event);
    }
    match parse(event, payload) {
        Ok(env) => route_read(event, &env, payload, policy),
        Err(ignored) => ignored,
    }
}

/// [`route`] for a caller that has read the payload's [`Envelope`] already.
pub fn route_read<P: Payload + ?Sized>(event: &str, env: &Envelope, payload: &P, policy: &RoutingPolicy) -> Route {
    if !handled(event) {
        return unhandled(event);
    }
    let action = env.action.as_deref().unwrap_or("");
    match event {
        "ping" => Route::jobs(Vec::new()),
        "installation" => installation_wide(event, env, INSTALLATION_ACTIONS.contains(&action), || {
            Trigger::Installation {
                action: action.to_owned(),
            }
        }),
        "installation_repositories" => installation_wide(event, env, matches!(action, "added" | "removed"), || {
            Trigger::InstallationRepositories
        }),
        "push" | "pull_request" | "issue_comment" | "check_run" => {
            let repo = match repository_checks(env, policy) {
                Ok(repo) => repo,
                Err(ignored) => return ignored,
            };
            let ctx = Ctx { env, repo, policy };
            match event {
                "push" => push(&ctx, payload),
                "pull_request" => pull_request(&ctx, payload, action),
                "issue_comment" => issue_comment(&ctx, payload, action),
                _ => check_run(&ctx, payload, action),
            }
        }
        other => unhandled(other),
    }
}

fn unhandled(event: &str) -> Route {
    Route::ignore(format!("event {event:?} is not handled"))
}

fn handled(event: &str) -> bool {
    const HANDLED: [&str; 7] = [
        "ping",
        "installation",
        "installation_repositories",
        "push",
        "pull_request",
        "issue_comment",
        "check_run",
    ];
    HANDLED.contains(&event)
}

/// Where to post the reply of a comment command (`issue_comment` deliveries only).
pub fn reply_target<P: Payload + ?Sized>(payload: &P) -> Option<ReplyTarget> {
    let env: Envelope = payload.read().ok()?;
    let comment: IssueCommentEvent = payload.read().ok()?;
    Some(ReplyTarget {
        installation_id: env.installation?.id,
        repo: RepoName::try_from(env.repository?.full_name).ok()?,
        issue_number: comment.issue.number,
    })
}

fn parse<T: DeserializeOwned, P: Payload + ?Sized>(event: &str, payload: &P) -> Result<T, Route> {
    payload
        .read()
        .map_err(|e| Route::ignore(format!("malformed {event} payload: {e}")))
}

/// `installation` / `installation_repositories`: one installation-wide sync. Not filtered by
/// sender type or repository lists (they come from people managing the installation).
fn installation_wide(event: &str, env: &Envelope, handled: bool, trigger: impl FnOnce() -> Trigger) -> Route {
    let action = env.action.as_deref().unwrap_or("");
    if !handled {
        return Route::ignore(format!("{event} action {action:?} is not handled"));
    }
    let Some(installation) = &env.installation else {
        return Route::ignore(format!("no installation id in this {event} delivery"));
    };
    Route::jobs(vec![JobIntent {
        kind: JobKind::Sync,
        installation_id: installation.id,
        repo: None,
        head_sha: None,
        git_ref: None,
        pr_number: None,
        trigger: trigger(),
        actor: env.sender.as_ref().map(|s| s.login.clone()),
        default_branch: None,
    }])
}

/// Bot senders, the repository name and the allow/block lists.
fn repository_checks(env: &Envelope, policy: &RoutingPolicy) -> Result<RepoName, Route> {
    if let Some(sender) = &env.sender {
        let ours = policy
            .bot_login()
            .is_some_and(|b| sender.login.eq_ignore_ascii_case(&b));
        if ours {
            return Err(Route::ignore(format!(
                "event sent by a bot ({}, this App itself)",
                sender.login
            )));
        }
        if sender.is_bot() {
            return Err(Route::ignore(format!("event sent by a bot ({})", sender.login)));
        }
    }
    let Some(Repository { full_name, .. }) = &env.repository else {
        return Err(Route::ignore("the payload names no repository"));
    };
    let repo = RepoName::try_from(full_name.clone()).map_err(Route::ignore)?;
    match policy.excludes(&repo) {
        Some(reason) => Err(Route::ignore(reason)),
        None => Ok(repo),
    }
}

struct Ctx<'a> {
    env: &'a Envelope,
    repo: RepoName,
    policy: &'a RoutingPolicy,
}

impl Ctx<'_> {
    fn default_branch(&self) -> Option<String> {
        self.env.repository.as_ref()?.default_branch.clone()
    }

    /// One job on this repository; needs the installation id.
    fn job(
        &self,
        kind: JobKind,
        head_sha: Option<String>,
        git_ref: Option<String>,
        pr_number: Option<i64>,
        trigger: Trigger,
    ) -> Route {
        let Some(installation) = &self.env.installation else {
            return Route::ignore(format!(
                "no installation id: the delivery for {} did not come through a GitHub App installation",
                self.repo.as_str()
            ));
        };
        Route::jobs(vec![JobIntent {
            kind,
            installation_id: installation.id,
            repo: Some(self.repo.clone()),
            head_sha,
            git_ref,
            pr_number,
            trigger,
            actor: self.env.sender.as_ref().map(|s| s.login.clone()),
            default_branch: self.default_branch(),
        }])
    }
}

fn push<P: Payload + ?Sized>(ctx: &Ctx<'_>, payload: &P) -> Route {
    let push: PushEvent = match parse("push", payload) {
        Ok(p) => p,
        Err(ignored) => return ignored,
    };
    let git_ref = push.git_ref.as_str();
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        return Route::ignore(format!("tag push ({tag}): only the default branch is analysed"));
    }
    let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
        return Route::ignore(format!("push to {git_ref}, which is not a branch"));
    };
    if push.deleted || push.after == ZERO_SHA {
        return Route::ignore(format!("branch {branch} was deleted"));
    }
    let Some(default) = ctx.default_branch() else {
        return Route::ignore("the payload does not name the repository's default branch");
    };
    if branch != default {
        return Route::ignore(format!("push to branch {branch}, not the default branch {default}"));
    }
    ctx.job(
        JobKind::Analysis,
        Some(push.after),
        Some(push.git_ref),
        None,
        Trigger::Push,
    )
}

fn pull_request<P: Payload + ?Sized>(ctx: &Ctx<'_>, payload: &P, action: &str) -> Route {
    if !PR_ACTIONS.contains(&action) {
        return Route::ignore(format!("pull_request action {action:?} does not trigger an analysis"));
    }
    let event: PullRequestEvent = match parse("pull_request", payload) {
        Ok(e) => e,
        Err(ignored) => return ignored,
    };
    // A draft becomes a job all the same: whether drafts are analysed is the repository's
    // `.autodevops.yml` setting, which only the worker reads.
    let pr = event.pull_request;
    ctx.job(
        JobKind::Analysis,
        Some(pr.head.sha),
        Some(format!("refs/pull/{}/head", pr.number)),
        Some(pr.number),
        Trigger::PullRequest { draft: pr.draft },
    )
}

fn issue_comment<P: Payload + ?Sized>(ctx: &Ctx<'_>, payload: &P, action: &str) -> Route {
    if action != "created" {
        return Route::ignore(format!("comment {action}: only new comments are read for commands"));
    }
    let event: IssueCommentEvent = match parse("issue_comment", payload) {
        Ok(e) => e,
        Err(ignored) => return ignored,
    };
    if event.issue.pull_request.is_none() {
        return Route::ignore(format!(
            "comment on issue #{}, not on a pull request",
            event.issue.number
        ));
    }
    let comment = event.comment;
    let requested = match command::parse(comment.body.as_deref().unwrap_or("")) {
        Parsed::NotACommand => {
            return Route::ignore(format!("comment is not a {} command", command::PREFIX));
        }
        Parsed::Command(c) => Ok(c),
        Parsed::Unknown(word) => Err(word),
    };
    let association = comment.author_association.as_deref().unwrap_or("NONE");
    if !WRITE_ASSOCIATIONS.contains(&association) {
        let author = comment
            .user
            .as_ref()
            .or(ctx.env.sender.as_ref())
            .map_or("the author", |a| a.login.as_str());
        return Route::ignore(format!(
            "{author} ({association}) does not have write access: commands need OWNER, MEMBER or COLLABORATOR"
        ));
    }
    let number = event.issue.number;
    match requested {
        Ok(Command::Analyze) => ctx.job(
            JobKind::Analysis,
            None,
            Some(format!("refs/pull/{number}/head")),
            Some(number),
            Trigger::Comment {
                command: Command::Analyze,
            },
        ),
        Ok(Command::Ci) => ctx.job(
            JobKind::CiGen,
            None,
            None,
            Some(number),
            Trigger::Comment { command: Command::Ci },
        ),
        Ok(Command::Help) => Route::Accept {
            jobs: Vec::new(),
            reply: Some(HELP.to_owned()),
        },
        Err(word) => Route::Accept {
            jobs: Vec::new(),
            reply: Some(format!("Unknown command `{} {word}`.\n\n{HELP}", command::PREFIX)),
        },
    }
}

fn check_run<P: Payload + ?Sized>(ctx: &Ctx<'_>, payload: &P, action: &str) -> Route {
    if action != "rerequested" {
        return Route::ignore(format!("check_run action {action:?} does not trigger an analysis"));
    }
    let event: CheckRunEvent = match parse("check_run", payload) {
        Ok(e) => e,
        Err(ignored) => return ignored,
    };
    let run = event.check_run;
    if let (Some(ours), Some(theirs)) = (
        ctx.policy.app_slug.as_deref(),
        run.app.as_ref().and_then(|a| a.slug.as_deref()),
    ) && !ours.eq_ignore_ascii_case(theirs)
    {
        return Route::ignore(format!("check run belongs to the App {theirs:?}, not {ours:?}"));
    }
    let git_ref = run
        .check_suite
        .and_then(|s| s.head_branch)
        .map(|b| format!("refs/heads/{b}"));
    ctx.job(
        JobKind::Analysis,
        Some(run.head_sha),
        git_ref,
        run.pull_requests.first().map(|p| p.number),
        Trigger::Rerun,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn fixture(path: &str) -> Value {
        let file = format!("{}/../tests/fixtures/webhooks/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn one_job(route: Route) -> JobIntent {
        match route {
            Route::Accept { mut jobs, reply: None } if jobs.len() == 1 => jobs.remove(0),
            other => panic!("expected one job, got {other:?}"),
        }
    }

    fn reason(route: Route) -> String {
        match route {
            Route::Ignore { reason } => reason,
            other => panic!("expected Ignore, got {other:?}"),
        }
    }

    fn with_slug(slug: &str) -> RoutingPolicy {
        RoutingPolicy {
            app_slug: Some(slug.into()),
            ..RoutingPolicy::default()
        }
    }

    /// A comment on pull request #1 (issue_comment fixture 04, made a PR comment).
    fn pr_comment(body: &str, association: &str) -> Value {
        let mut p = fixture("issue_comment/04-created.json");
        p["issue"]["pull_request"] = json!({
            "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
            "html_url": "https://github.com/Codertocat/Hello-World/pull/1",
            "diff_url": "https://github.com/Codertocat/Hello-World/pull/1.diff",
            "patch_url": "https://github.com/Codertocat/Hello-World/pull/1.patch"
        });
        p["comment"]["body"] = body.into();
        p["comment"]["author_association"] = association.into();
        p
    }

    #[test]
    fn push_to_another_branch_is_ignored() {
        let mut p = fixture("push/05-branch-created.json");
        p["ref"] = "refs/heads/feature/x".into();
        assert_eq!(
            reason(route("push", &p, &RoutingPolicy::default())),
            "push to branch feature/x, not the default branch master"
        );
    }

    #[test]
    fn deleted_branches_are_ignored() {
        let mut p = fixture("push/05-branch-created.json");
        p["after"] = ZERO_SHA.into();
        assert_eq!(
            reason(route("push", &p, &RoutingPolicy::default())),
            "branch master was deleted"
        );
        let mut p = fixture("push/05-branch-created.json");
        p["deleted"] = true.into();
        assert_eq!(
            reason(route("push", &p, &RoutingPolicy::default())),
            "branch master was deleted"
        );
    }

    #[test]
    fn draft_pull_requests_become_jobs_marked_draft() {
        let mut p = fixture("pull_request/13-opened.json");
        p["pull_request"]["draft"] = true.into();
        let job = one_job(route("pull_request", &p, &RoutingPolicy::default()));
        assert_eq!(job.pr_number, Some(2));
        assert_eq!(job.trigger, Trigger::PullRequest { draft: true });
        let stored = serde_json::to_value(&job.trigger).unwrap();
        assert_eq!(stored, json!({ "type": "pull_request", "draft": true }));

        p["pull_request"]["draft"] = false.into();
        let job = one_job(route("pull_request", &p, &RoutingPolicy::default()));
        let stored = serde_json::to_value(&job.trigger).unwrap();
        assert_eq!(stored, json!({ "type": "pull_request" }), "no draft flag on ready PRs");
        let read: Trigger = serde_json::from_value(stored).unwrap();
        assert_eq!(read, Trigger::PullRequest { draft: false });
    }

    #[test]
    fn analyze_command_from_a_writer_analyses_the_pull_request() {
        for association in WRITE_ASSOCIATIONS {
            let p = pr_comment("/autodevops analyze", association);
            let job = one_job(route("issue_comment", &p, &RoutingPolicy::default()));
            assert_eq!(
                job,
                JobIntent {
                    kind: JobKind::Analysis,
                    installation_id: 1,
                    repo: Some(RepoName::try_from("Codertocat/Hello-World".to_owned()).unwrap()),
                    head_sha: None,
                    git_ref: Some("refs/pull/1/head".into()),
                    pr_number: Some(1),
                    trigger: Trigger::Comment {
                        command: Command::Analyze
                    },
                    actor: Some("Codertocat".into()),
                    default_branch: Some("master".into()),
                }
            );
        }
    }

    #[test]
    fn ci_command_generates_ci_for_the_repository() {
        let p = pr_comment("/autodevops ci", "MEMBER");
        let job = one_job(route("issue_comment", &p, &RoutingPolicy::default()));
        assert_eq!(job.kind, JobKind::CiGen);
        assert_eq!(job.trigger, Trigger::Comment { command: Command::Ci });
        assert_eq!((job.head_sha, job.git_ref), (None, None));
        assert_eq!(job.pr_number, Some(1));
    }

    #[test]
    fn help_and_unknown_commands_reply_without_jobs() {
        let policy = RoutingPolicy::default();
        let p = pr_comment("/autodevops help", "OWNER");
        assert_eq!(
            route("issue_comment", &p, &policy),
            Route::Accept {
                jobs: vec![],
                reply: Some(HELP.into())
            }
        );
        let p = pr_comment("/autodevops deploy now", "OWNER");
        match route("issue_comment", &p, &policy) {
            Route::Accept {
                jobs,
                reply: Some(text),
            } => {
                assert!(jobs.is_empty());
                assert!(text.starts_with("Unknown command `/autodevops deploy`"), "{text}");
                assert!(text.ends_with(HELP));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            reply_target(&p),
            Some(ReplyTarget {
                installation_id: 1,
                repo: RepoName::try_from("Codertocat/Hello-World".to_owned()).unwrap(),
                issue_number: 1,
            })
        );
    }

    #[test]
    fn commands_need_write_access() {
        for association in ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE", "MANNEQUIN"] {
            let p = pr_comment("/autodevops analyze", association);
            assert_eq!(
                reason(route("issue_comment", &p, &RoutingPolicy::default())),
                format!(
                    "Codertocat ({association}) does not have write access: commands need OWNER, MEMBER or COLLABORATOR"
                )
            );
        }
    }

    #[test]
    fn other_pull_request_comments_are_ignored() {
        let p = pr_comment("Looks good to me", "OWNER");
        assert_eq!(
            reason(route("issue_comment", &p, &RoutingPolicy::default())),
            "comment is not a /autodevops command"
        );
        let mut p = pr_comment("/autodevops analyze", "OWNER");
        p["action"] = "edited".into();
        assert_eq!(
            reason(route("issue_comment", &p, &RoutingPolicy::default())),
            "comment edited: only new comments are read for commands"
        );
    }

    #[test]
    fn rerun_takes_the_pull_request_and_checks_the_app() {
        let mut p = fixture("check_run/08-rerequested.json");
        p["check_run"]["pull_requests"] = fixture("check_run/01-created.json")["check_run"]["pull_requests"].clone();
        let job = one_job(route("check_run", &p, &RoutingPolicy::default()));
        assert_eq!(job.trigger, Trigger::Rerun);
        assert_eq!(job.pr_number, Some(2));
        assert_eq!(
            job.head_sha.as_deref(),
            Some("d6fde92930d4715a2b49857d24b940956b26d2d3")
        );

        p["check_run"]["app"]["slug"] = "super-duper".into();
        let why = reason(route("check_run", &p, &with_slug("autodevops")));
        assert_eq!(why, r#"check run belongs to the App "super-duper", not "autodevops""#);
        one_job(route("check_run", &p, &with_slug("Super-Duper")));
    }

    #[test]
    fn our_own_bot_is_ignored() {
        let mut p = fixture("pull_request/13-opened.json");
        p["sender"]["login"] = "autodevops[bot]".into();
        p["sender"]["type"] = "Bot".into();
        assert_eq!(
            reason(route("pull_request", &p, &with_slug("autodevops"))),
            "event sent by a bot (autodevops[bot], this App itself)"
        );
    }

    #[test]
    fn allow_list_limits_repositories() {
        let p = fixture("pull_request/13-opened.json");
        let allow = |patterns: &str| RoutingPolicy {
            allow: patterns.split(',').map(|s| s.parse().unwrap()).collect(),
            ..RoutingPolicy::default()
        };
        assert_eq!(
            reason(route("pull_request", &p, &allow("octo-org,acme/*"))),
            "repository Codertocat/Hello-World matches no GITHUB_REPO_ALLOW pattern (octo-org, acme/*)"
        );
        one_job(route("pull_request", &p, &allow("octo-org,codertocat/hello-*")));
        one_job(route("pull_request", &p, &allow("CODERTOCAT")));
    }

    #[test]
    fn unknown_events_and_actions_are_named() {
        let p = fixture("push/05-branch-created.json");
        for event in ["issues", "workflow_run", "release"] {
            assert_eq!(
                reason(route(event, &p, &RoutingPolicy::default())),
                format!("event {event:?} is not handled")
            );
        }
        let mut p = fixture("installation/02-created.json");
        p["action"] = "renamed".into();
        assert_eq!(
            reason(route("installation", &p, &RoutingPolicy::default())),
            r#"installation action "renamed" is not handled"#
        );
        p["action"] = "created".into();
        p.as_object_mut().unwrap().remove("installation");
        assert_eq!(
            reason(route("installation", &p, &RoutingPolicy::default())),
            "no installation id in this installation delivery"
        );
    }

    #[test]
    fn malformed_payloads_are_ignored_with_the_field() {
        let mut p = fixture("push/05-branch-created.json");
        p.as_object_mut().unwrap().remove("after");
        let why = reason(route("push", &p, &RoutingPolicy::default()));
        assert_eq!(why, "malformed push payload: missing field `after`");
    }

    #[test]
    fn routes_and_intents_serialize_for_records_and_jobs() {
        let job = one_job(route(
            "push",
            &fixture("push/05-branch-created.json"),
            &RoutingPolicy::default(),
        ));
        let value = serde_json::to_value(&job).unwrap();
        assert_eq!(value["kind"], "analysis");
        assert_eq!(value["trigger"], json!({ "type": "push" }));
        assert_eq!(serde_json::from_value::<JobIntent>(value).unwrap(), job);

        let ignored = route("issues", &json!({}), &RoutingPolicy::default());
        assert_eq!(ignored.outcome(), "ignored");
        assert_eq!(
            serde_json::to_value(&ignored).unwrap(),
            json!({ "outcome": "ignored", "reason": "event \"issues\" is not handled" })
        );
        let comment = Trigger::Comment { command: Command::Ci };
        assert_eq!(
            serde_json::to_value(&comment).unwrap(),
            json!({ "type": "comment", "command": "ci" })
        );
    }
}
