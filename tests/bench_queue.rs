//! `autodevops bench queue` runs to completion on real Redis — with a burst larger than the
//! ~8,000 jobs that apalis-redis 1.0's fetch can promote in one `unpack`, which would stall the
//! pool for good without our chunked promotion — and across several worker processes.

mod common;

use std::path::Path;

use serde_json::Value;

/// Runs `bench queue` with these arguments under `prefix` and returns its JSON report.
fn bench(dir: &Path, prefix: &str, args: &[&str]) -> Value {
    let out = common::command(
        dir,
        &[("REDIS_URL", common::redis_url()), ("QUEUE_PREFIX", prefix.to_owned())],
    )
    .args(["bench", "queue"])
    .args(args)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["enqueue_per_sec", "jobs_per_sec", "p50_ms", "p99_ms"] {
        assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report}");
    }
    assert!(report["p99_ms"].as_f64() >= report["p50_ms"].as_f64(), "{report}");
    report
}

/// Every Redis key under `prefix`.
async fn keys_under(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_10k_jobs_drains_completely() {
    let work = tempfile::tempdir().unwrap();
    let prefix = common::fresh_redis_prefix().await;
    let args = ["--jobs", "10000", "--concurrency", "32", "--workers", "2"];
    let report = bench(work.path(), &prefix, &args);
    assert_eq!(report["jobs"], 10000);
    assert_eq!(report["workers"], 2);
    assert_eq!(report["processes"], 1);
    assert_eq!(keys_under(&prefix).await, Vec::<String>::new());
}

#[tokio::test]
async fn two_worker_processes_drain_one_queue() {
    let work = tempfile::tempdir().unwrap();
    let prefix = common::fresh_redis_prefix().await;
    let args = ["--jobs", "2000", "--concurrency", "8", "--processes", "2"];
    let report = bench(work.path(), &prefix, &args);
    assert_eq!(report["jobs"], 2000);
    assert_eq!(report["processes"], 2);
    assert_eq!(
        keys_under(&prefix).await,
        Vec::<String>::new(),
        "bench keys left in Redis"
    );
}

#[test]
fn zero_processes_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = common::command(work.path(), &[("REDIS_URL", common::redis_url())])
        .args(["bench", "queue", "--jobs", "10", "--processes", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--processes must be at least 1"), "{stderr}");
}
