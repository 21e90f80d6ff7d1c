//! `GET /v1/queues` and `autodevops autoscale` on a queue the test fills (embedded API only, no
//! workers, so every submitted job stays pending). The scale command is a fake that records
//! what it was asked.

mod common;

use std::path::Path;

use common::free_port;
use serde_json::Value;

fn autoscale(work: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = common::command(work, &[]).arg("autoscale").args(args).output().unwrap();
    let decisions = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (
        out.status.code(),
        decisions,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn recorded(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscale_follows_queue_depth_with_clamp_and_cooldown() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [("BIND_ADDR", format!("127.0.0.1:{port}"))];
    let (_api_proc, api) = common::start_api_only(work.path(), &env, port).await;
    let rec = work.path().join("scaled.txt");
    let state = work.path().join("autoscale.json");
    let command = format!("echo {{replicas}} >> {}", rec.display());
    let base = |max: &str, per: &str, cooldown: &str| {
        vec![
            "--once".to_owned(),
            "--min".into(),
            "1".into(),
            "--max".into(),
            max.into(),
            "--jobs-per-worker".into(),
            per.into(),
            "--cooldown-secs".into(),
            cooldown.into(),
            "--state-file".into(),
            state.display().to_string(),
            "--command".into(),
            command.clone(),
        ]
    };
    let run = |args: Vec<String>| autoscale(work.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());

    // Empty queue → MIN.
    let (code, d, err) = run(base("30", "20", "600"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!((d[0]["pending"].as_u64(), d[0]["desired"].as_u64()), (Some(0), Some(1)));
    assert_eq!(recorded(&rec), ["1"]);

    // 500 pending → ceil(500 / 20) = 25 workers.
    let dirs = work.path().join("checkouts");
    for i in 0..500 {
        let dir = dirs.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        api.submit(["analysis", "sync", "ci_gen"][i % 3], &dir).await;
    }
    let (_, queues) = api.get("/v1/queues").await;
    let pending: u64 = ["analysis", "sync", "ci_gen"]
        .iter()
        .map(|q| queues["queues"][q]["pending"].as_u64().unwrap())
        .sum();
    assert_eq!(pending, 500, "{queues}");
    assert!(queues["queues"]["analysis"]["oldest_pending_age_s"].as_f64().unwrap() >= 0.0);
    let metrics = api.metrics().await;
    assert!(
        metrics.contains(r#"autodevops_queue_depth{queue="analysis",state="pending"} 167"#),
        "{metrics}"
    );

    let (_, d, _) = run(base("30", "20", "600"));
    assert_eq!(
        (d[0]["desired"].as_u64(), d[0]["action"].as_str()),
        (Some(25), Some("scale"))
    );
    assert_eq!(recorded(&rec), ["1", "25"]);

    // The same again → hold, nothing applied.
    let (_, d, _) = run(base("30", "20", "600"));
    assert_eq!(
        (d[0]["action"].as_str(), d[0]["applied"].as_bool()),
        (Some("hold"), Some(false))
    );

    // Fewer workers wanted (more jobs per worker) within the cool-down → no scale-down.
    let (_, d, _) = run(base("30", "100", "600"));
    assert_eq!(
        (d[0]["desired"].as_u64(), d[0]["action"].as_str()),
        (Some(5), Some("cooldown"))
    );
    assert_eq!(recorded(&rec), ["1", "25"]);
    // Once the cool-down has passed it shrinks; and MAX clamps.
    let (_, d, _) = run(base("30", "100", "0"));
    assert_eq!(d[0]["action"], "scale");
    let (_, d, _) = run(base("3", "1", "0"));
    assert_eq!(d[0]["desired"], 3);
    assert_eq!(recorded(&rec), ["1", "25", "5", "3"]);

    // --dry-run decides without applying; bad bounds and a failing command are errors.
    let (code, d, _) = autoscale(
        work.path(),
        &["--once", "--dry-run", "--max", "50", "--jobs-per-worker", "10"],
    );
    assert_eq!(
        (code, d[0]["desired"].as_u64(), d[0]["applied"].as_bool()),
        (Some(0), Some(50), Some(false))
    );
    assert_eq!(recorded(&rec).len(), 4);
    let (code, _, err) = autoscale(work.path(), &["--once", "--dry-run", "--min", "5", "--max", "2"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--min"), "{err}");
    let (code, _, err) = autoscale(work.path(), &["--once", "--min", "2", "--command", "exit 3"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("scale command"), "{err}");
    let (code, _, _) = autoscale(work.path(), &["--once"]);
    assert_eq!(code, Some(2), "without --command or --dry-run: a usage error");
}
