//! Production shape: one `api` process and two `worker` processes sharing the work through
//! Redis (apalis-redis) and Postgres (sea-orm). Real services; each test has its own Postgres
//! database and Redis key prefix.

mod common;

/// One integer reply (LLEN, ZCARD, HLEN, SCARD …) for `key`.
async fn count(conn: &mut redis::aio::MultiplexedConnection, cmd: &str, key: &str) -> u64 {
    redis::cmd(cmd).arg(key).query_async(conn).await.unwrap()
}

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Api, Proc, fixture_repo, fixture_repos, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_200_jobs_each_run_exactly_once() {
    let database_url = common::fresh_postgres().await;
    let prefix = common::fresh_redis_prefix().await;
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let port = free_port();
    let env = vec![
        ("DATABASE_URL", database_url.clone()),
        ("REDIS_URL", common::redis_url()),
        ("QUEUE_PREFIX", prefix.clone()),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("WORKER_CONCURRENCY", "1".to_owned()), // one job at a time each: neither process can drain the burst alone
        ("CLEANUP_INTERVAL_SECS", "1".to_owned()),
    ];

    // `api` and `worker` refuse an unmigrated database.
    let out = common::command(work.path(), &env).arg("worker").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("autodevops migrate"));
    let status = common::command(work.path(), &env).arg("migrate").status().unwrap();
    assert!(status.success(), "migrate");

    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    // The second worker also serves its probes and metrics.
    let health_port = free_port();
    let mut env_with_health = env.clone();
    env_with_health.push(("WORKER_HEALTH_ADDR", format!("127.0.0.1:{health_port}")));
    let workers = [
        Proc::spawn(work.path(), &["worker"], &env),
        Proc::spawn(work.path(), &["worker"], &env_with_health),
    ];
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    let (status, ready) = api.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["queue"]["backend"], "redis");
    assert_eq!(ready["checks"]["database"]["backend"], "postgres");
    // Queue depth on Postgres (its GROUP BY rules are stricter than SQLite's).
    let (status, queues) = api.get("/v1/queues").await;
    assert_eq!(status, 200, "{queues}");
    assert_eq!(queues["queues"]["analysis"]["pending"], 0, "{queues}");

    // Both worker processes are registered on every queue before the burst, so both take jobs.
    // Names carry the process id (a process re-registers under a new name when a consumer
    // restarts, so counting names is not enough).
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pids: Vec<String> = workers.iter().map(|w| format!("-{}-", w.child.id())).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for q in ["analysis", "ci_gen", "sync"] {
        loop {
            let names: Vec<String> = redis::cmd("ZRANGE")
                .arg(format!("{prefix}{q}:workers"))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap();
            if pids.iter().all(|pid| names.iter().any(|n| n.contains(pid.as_str()))) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "workers {pids:?} did not both register on {q}: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let kinds = ["analysis", "ci_gen", "sync"];
    let repos = fixture_repos(repo.path(), 200);
    // Both processes take a share of the burst: each runs one job at a time, so neither can
    // drain it alone unless the other stops looking at its queue (apalis's interval poller lost
    // its wakeup after a tick and an idle worker then looked once per heartbeat; see
    // worker/src/poll.rs).
    let worker_ids: HashSet<String> = workers.iter().map(|w| format!("-{}-", w.child.id())).collect();
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    for (i, dir) in repos.iter().enumerate() {
        ids.push(api.submit(kinds[i % 3], dir).await);
    }
    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "run more than once: {job}");
        *by_worker.entry(job["worker"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 200);
    assert!(
        by_worker
            .keys()
            .all(|w| worker_ids.iter().any(|pid| w.contains(pid.as_str()))),
        "jobs ran only on the two worker processes: {by_worker:?}"
    );
    eprintln!("jobs per worker process: {by_worker:?}");
    assert_eq!(by_worker.len(), 2, "both processes took jobs: {by_worker:?}");
    assert!(
        by_worker.values().all(|n| *n >= 40),
        "each process took at least a fifth of the jobs: {by_worker:?}"
    );

    // Queues are empty: nothing ready, scheduled or in flight is left in Redis.
    for kind in kinds {
        let q = format!("{prefix}{kind}");
        let active = count(&mut conn, "LLEN", &format!("{q}:active")).await;
        let scheduled = count(&mut conn, "ZCARD", &format!("{q}:scheduled")).await;
        assert_eq!((active, scheduled), (0, 0), "queue {q} not empty");
        // Finished tasks' payloads, results and metadata are cleaned up (apalis-redis#10).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let data = count(&mut conn, "HLEN", &format!("{q}:data")).await;
            let done = count(&mut conn, "SCARD", &format!("{q}:done")).await;
            let metas: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{q}:meta:*"))
                .query_async(&mut conn)
                .await
                .unwrap();
            if (data, done, metas.len()) == (0, 0, 0) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{q}: {data} payloads, {done} done ids, {} meta keys left",
                metas.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let workers: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{q}:workers"))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(workers.len(), 2, "{q}: one apalis worker per process: {workers:?}");
        for worker in workers {
            let set = format!("{q}:inflight:{worker}");
            let n: u64 = redis::cmd("SCARD").arg(&set).query_async(&mut conn).await.unwrap();
            assert_eq!(n, 0, "{set} still holds acknowledged jobs");
        }
    }
    // Production mode without ALLOW_LOCAL_PATHS refuses path sources, naming the field.
    let strict_port = free_port();
    let strict_env: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "ALLOW_LOCAL_PATHS")
        .map(|(k, v)| {
            (
                *k,
                if *k == "BIND_ADDR" {
                    format!("127.0.0.1:{strict_port}")
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let mut strict_proc = Proc::spawn(work.path(), &["api"], &strict_env);
    let strict = Api::new(strict_port);
    strict.wait_healthy(&mut strict_proc).await;
    let (status, resp) = strict
        .post("/v1/jobs", serde_json::json!({"kind": "analysis", "path": repo.path()}))
        .await;
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["error"]["field"], "path");
    assert_eq!(resp["error"]["code"], "local_paths_disabled");

    let (_, listed) = api.get("/v1/jobs?status=queued").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 0);
    // The worker's own endpoints: alive, ready, and its job counters for Prometheus.
    let worker_http = Api::new(health_port);
    assert_eq!(worker_http.get("/health").await.0, 200);
    let (status, ready) = worker_http.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    let metrics = worker_http.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("autodevops_jobs_total{") && l.contains("outcome=\"succeeded\"")),
        "{metrics}"
    );
    assert_eq!(worker_http.get("/v1/jobs").await.0, 404, "the worker serves no API");
    drop(workers);
}
