//! `autodevops bench queue` runs to completion on real Redis — with a burst larger than the
//! ~8,000 jobs that apalis-redis 1.0's fetch can promote in one `unpack`, which would stall the
//! pool for good without our chunked promotion.

mod common;

#[test]
fn a_burst_of_10k_jobs_drains_completely() {
    let work = tempfile::tempdir().unwrap();
    let out = common::command(work.path(), &[("REDIS_URL", common::redis_url())])
        .args([
            "bench",
            "queue",
            "--jobs",
            "10000",
            "--concurrency",
            "32",
            "--workers",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"], 10000);
    assert_eq!(report["workers"], 2);
    for field in ["enqueue_per_sec", "jobs_per_sec", "p50_ms", "p99_ms"] {
        assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report}");
    }
}
