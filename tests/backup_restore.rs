//! ops/backup.sh and ops/restore.sh: a backup, a lost database, a restore — jobs and their
//! results come back as they were.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Api, Proc, fixture_repos, free_port};

fn script(name: &str, url: &str, file: &Path) -> std::process::Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(name))
        .args(["--database-url", url])
        .arg(file)
        .output()
        .unwrap()
}

async fn jobs_snapshot(api: &Api) -> Vec<serde_json::Value> {
    let (status, list) = api.get("/v1/jobs?limit=200").await;
    assert_eq!(status, 200);
    list["jobs"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backup_drop_restore_keeps_jobs_and_results() {
    let url = common::fresh_postgres().await;
    let work = tempfile::tempdir().unwrap();
    let repos = fixture_repos(work.path(), 3);
    let port = free_port();
    let env = vec![
        ("DATABASE_URL", url.clone()),
        ("REDIS_URL", common::redis_url()),
        ("QUEUE_PREFIX", common::fresh_redis_prefix().await),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
    ];
    assert!(
        common::command(work.path(), &env)
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    let mut worker = Proc::spawn(work.path(), &["worker"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    for (dir, kind) in repos.iter().zip(["analysis", "ci_gen", "sync"]) {
        let id = api.submit(kind, dir).await;
        assert_eq!(api.wait_done(&id, Duration::from_secs(60)).await["status"], "succeeded");
    }
    let before = jobs_snapshot(&api).await;
    let backup = work.path().join("autodevops.dump");
    let out = script("backup.sh", &url, &backup);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Disaster: the tables are gone.
    api_proc.kill9();
    worker.kill9();
    {
        use sea_orm::{ConnectionTrait, Database};
        let conn = Database::connect(&url).await.unwrap();
        conn.execute_unprepared("DROP TABLE autodevops_jobs; DROP TABLE seaql_migrations;")
            .await
            .unwrap();
    }
    let out = script("restore.sh", &url, &backup);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    api.wait_healthy(&mut api_proc).await;
    let after = jobs_snapshot(&api).await;
    assert_eq!(after.len(), 3);
    assert_eq!(after, before, "every job, status and result restored");
}

#[test]
fn scripts_explain_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops");
    for name in ["backup.sh", "restore.sh"] {
        let help = Command::new(root.join(name)).arg("--help").output().unwrap();
        assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains(name));
        let none = Command::new(root.join(name))
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(none.status.code(), Some(2));
        let out = script(name, "mysql://x", &tmp.path().join("f"));
        assert_ne!(out.status.code(), Some(0), "{name} accepted a mysql URL");
    }
}
