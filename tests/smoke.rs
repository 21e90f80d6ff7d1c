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
