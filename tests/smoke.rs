//! ops/smoke.sh against a running stack (embedded), as CI and a deploy would run it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Api, Proc, fixture_repo, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_script_passes_against_a_running_stack_and_fails_when_it_is_down() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let port = free_port();
    let key = "0123456789abcdef0123456789";
    let env = [
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("API_KEYS", format!("smoke:{key}")),
        ("GITHUB_WEBHOOK_SECRET", "smoke-secret-123".to_owned()),
    ];
    let mut proc = Proc::spawn(work.path(), &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/smoke.sh");
    let run = |url: &str| {
        let (script, url, path) = (script.clone(), url.to_owned(), repo.path().to_owned());
        tokio::task::spawn_blocking(move || {
            Command::new(script)
                .args([
                    "--url",
                    &url,
                    "--api-key",
                    key,
                    "--webhook-secret",
                    "smoke-secret-123",
                    "--path",
                ])
                .arg(path)
                .output()
                .unwrap()
        })
    };
    let out = run(&api.base).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "/health",
        "/ready",
        "signed ping webhook accepted",
        "unsigned webhook refused",
        "succeeded",
        "autodevops_ready 1",
    ] {
        assert!(stdout.contains(step), "{step} missing from:\n{stdout}");
    }
    proc.kill9();
    let out = run(&api.base).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "a stack that is down fails the smoke test");
    let help = Command::new(&script).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--url"));
    assert_eq!(
        Command::new(&script).output().unwrap().status.code(),
        Some(2),
        "no --url: usage error"
    );
}

/// ops/rotate-webhook-secret.sh through a rotation: both secrets verify during it, and the
/// check fails when a secret that should work does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secret_rotation_script_checks_every_secret() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/rotate-webhook-secret.sh");
    let new = Command::new(&script).arg("new").output().unwrap();
    assert!(new.status.success());
    let new = String::from_utf8(new.stdout).unwrap().trim().to_owned();
    assert_eq!(new.len(), 64, "{new}");
    assert!(new.bytes().all(|b| b.is_ascii_hexdigit()));

    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("GITHUB_WEBHOOK_SECRET", format!("{new},old-secret-0001")),
    ];
    let mut proc = Proc::spawn(work.path(), &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    let check = |args: Vec<String>| {
        let script = script.clone();
        tokio::task::spawn_blocking(move || Command::new(script).arg("check").args(args).output().unwrap())
    };
    let base = api.base.clone();
    let args = |rest: &[&str]| -> Vec<String> {
        let mut v = vec!["--url".to_owned(), base.clone()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let out = check(args(&[
        "--secret",
        &new,
        "--secret",
        "old-secret-0001",
        "--refused",
        "never-set",
    ]))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("ok ").count(), 3, "{stdout}");
    assert!(!stdout.contains(&new), "a secret was printed");
    let out = check(args(&["--secret", "never-set"])).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused secret fails the check");
    let out = check(args(&["--refused", &new])).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an accepted secret that should be refused fails it"
    );
    assert_eq!(Command::new(&script).output().unwrap().status.code(), Some(2));
    assert_eq!(
        Command::new(&script).args(["check"]).output().unwrap().status.code(),
        Some(2)
    );
    let help = Command::new(&script).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("check --url"));
    proc.kill9();
}
