//! Workers die and are stopped: real worker processes on Redis + Postgres, killed with SIGKILL
//! mid-job or stopped with SIGTERM. No accepted job is lost; none is run to completion twice.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Api, Proc, free_port, slow_repos, wait_for_job};

struct Stack {
    env: Vec<(&'static str, String)>,
    api: Api,
    _api_proc: Proc,
}

async fn stack(work: &std::path::Path, extra: &[(&'static str, String)]) -> Stack {
    let port = free_port();
    let mut env = vec![
        ("DATABASE_URL", common::fresh_postgres().await),
        ("REDIS_URL", common::redis_url()),
        ("QUEUE_PREFIX", common::fresh_redis_prefix().await),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("MAX_FILE_BYTES", (512u64 << 20).to_string()),
        ("JOB_LEASE_SECS", "3".to_owned()),
        ("RELAY_INTERVAL_MS", "200".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    assert!(common::command(work, &env).arg("migrate").status().unwrap().success());
    let mut api_proc = Proc::spawn(work, &["api"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    Stack {
        env,
        api,
        _api_proc: api_proc,
    }
}

fn worker(work: &std::path::Path, env: &[(&'static str, String)], host: &str) -> Proc {
    let mut env = env.to_vec();
    env.push(("HOSTNAME", host.to_owned()));
    Proc::spawn(work, &["worker"], &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_killed_mid_job_ten_times_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let repos = slow_repos(work.path(), 100, 40);
    // The same job can be cut off several times in a row: allow it more attempts than kills.
    let s = stack(
        work.path(),
        &[
            ("WORKER_CONCURRENCY", "2".to_owned()),
            ("JOB_MAX_ATTEMPTS", "15".to_owned()),
        ],
    )
    .await;
    let mut victim = worker(work.path(), &s.env, "victim");
    let mut ids = Vec::new();
    for (i, dir) in repos.iter().enumerate() {
        ids.push(s.api.submit(["analysis", "ci_gen"][i % 2], dir).await);
    }
    // Ten times: wait until the victim is running a job, then SIGKILL it and start a new one.
    let mut killed_jobs = Vec::new();
    for round in 0..10 {
        let current = format!("victim-{}-", victim.child.id());
        let job = wait_for_job(&s.api, "running", Duration::from_secs(60), |j| {
            j["worker"].as_str().is_some_and(|w| w.starts_with(&current))
        })
        .await;
        victim.kill9();
        killed_jobs.push(job["id"].as_str().unwrap().to_owned());
        victim = worker(work.path(), &s.env, "victim");
        eprintln!("round {round}: killed the victim while it ran {}", job["id"]);
    }
    // A second, steady worker helps drain the rest; the victim's lost jobs come back to either.
    let _steady = worker(work.path(), &s.env, "steady");
    for id in &ids {
        let job = s.api.wait_done(id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert!(
            job["result"]["report"].is_object() || job["result"]["workflow"].is_object(),
            "{job}"
        );
    }
    // Each job the victim was running when it died ran again, and its history says why.
    for id in &killed_jobs {
        let (_, job) = s.api.get(&format!("/v1/jobs/{id}")).await;
        assert!(job["attempts"].as_i64().unwrap() >= 2, "{job}");
        let history = job["history"].as_array().unwrap();
        assert!(
            history
                .iter()
                .any(|h| h["error"].as_str().is_some_and(|e| e.contains("lease expired"))),
            "{job}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_jobs_within_the_grace_period() {
    let work = tempfile::tempdir().unwrap();
    let repos = slow_repos(work.path(), 1, 200);
    let s = stack(work.path(), &[("SHUTDOWN_GRACE_SECS", "15".to_owned())]).await;
    let mut w = worker(work.path(), &s.env, "drainer");
    // The worker has been up longer than the grace period: the grace counts from the signal.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let id = s.api.submit("analysis", &repos[0]).await;
    wait_for_job(&s.api, "running", Duration::from_secs(30), |j| j["id"] == id.as_str()).await;
    let status = w
        .terminate(Duration::from_secs(30))
        .expect("worker exits after draining");
    assert!(status.success(), "exit 0 after SIGTERM: {status}");
    let (_, job) = s.api.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(
        job["status"], "succeeded",
        "the in-flight job finished before exit: {job}"
    );
    assert_eq!(job["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_hands_back_what_does_not_finish_in_time() {
    let work = tempfile::tempdir().unwrap();
    let repos = slow_repos(work.path(), 1, 300);
    let s = stack(work.path(), &[("SHUTDOWN_GRACE_SECS", "0".to_owned())]).await;
    let mut w = worker(work.path(), &s.env, "impatient");
    let id = s.api.submit("analysis", &repos[0]).await;
    wait_for_job(&s.api, "running", Duration::from_secs(30), |j| j["id"] == id.as_str()).await;
    let status = w.terminate(Duration::from_secs(20)).expect("worker exits at once");
    assert!(status.success(), "exit 0 after SIGTERM: {status}");
    let (_, job) = s.api.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "queued", "handed back, not left running: {job}");
    // Another worker takes it; the interrupted attempt is not counted against it.
    let _next = worker(work.path(), &s.env, "next");
    let job = s.api.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeouts_are_retried_with_backoff_then_succeed_or_go_dead() {
    let work = tempfile::tempdir().unwrap();
    // Two slow checkouts, a 1-second analysis timeout, two attempts. Each checkout holds the
    // same 500 MB file four times (hard links): 2 GB to read outlasts the second on a fast
    // machine too (one 500 MB file was read in 0.99 s once).
    let repos = slow_repos(work.path(), 2, 500);
    let copies = |repo: &Path| (2..=4).map(|i| repo.join(format!("notes-{i}.txt"))).collect::<Vec<_>>();
    for repo in &repos {
        for copy in copies(repo) {
            std::fs::hard_link(repo.join("notes.txt"), copy).unwrap();
        }
    }
    let s = stack(
        work.path(),
        &[
            ("ANALYSIS_TIMEOUT_SECS", "1".to_owned()),
            ("ANALYSIS_MAX_ATTEMPTS", "2".to_owned()),
        ],
    )
    .await;
    let _w = worker(work.path(), &s.env, "w");
    let recovers = s.api.submit("analysis", &repos[0]).await;
    let stays_slow = s.api.submit("analysis", &repos[1]).await;

    // The first attempt times out: the job waits for its retry...
    let job = wait_for_job(&s.api, "retrying", Duration::from_secs(60), |j| {
        j["id"] == recovers.as_str()
    })
    .await;
    assert!(job["error"].as_str().unwrap().contains("timed out"), "{job}");
    // ...and once the checkout is fast again, the retry succeeds.
    for file in copies(&repos[0]).into_iter().chain([repos[0].join("notes.txt")]) {
        std::fs::remove_file(file).unwrap();
    }
    let job = s.api.wait_done(&recovers, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["history"].as_array().unwrap().len(), 1, "{job}");

    // The other times out on every attempt: dead after ANALYSIS_MAX_ATTEMPTS, every error kept.
    let job = s.api.wait_done(&stays_slow, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        job["error"].as_str().unwrap().starts_with("gave up after 2 attempts"),
        "{job}"
    );
    let history = job["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{job}");
    assert!(
        history
            .iter()
            .all(|h| h["error"].as_str().unwrap().contains("timed out")),
        "{job}"
    );
    let (_, dead) = s.api.get("/v1/dead-jobs").await;
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 1);
}

/// apalis's orphan re-enqueue (apalis PR #507) can hand a job that a live worker is still running
/// to another worker. Simulated by pushing the running job's message again: the second worker's
/// claim fails (the lease is held) and it drops the message; the job runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_redelivered_while_its_job_runs_elsewhere_is_dropped() {
    let work = tempfile::tempdir().unwrap();
    let repo = slow_repos(work.path(), 1, 300).remove(0);
    let s = stack(work.path(), &[("WORKER_CONCURRENCY", "1".to_owned())]).await;
    let mut first = worker(work.path(), &s.env, "first");
    let id = s.api.submit("analysis", &repo).await;
    let running = wait_for_job(&s.api, "running", Duration::from_secs(30), |j| j["id"] == id.as_str()).await;
    let mut second = worker(work.path(), &s.env, "second");

    // What the library's recovery would do: the same job id on the queue again, under a new key.
    let cfg = shared::config::Config::from_vars(s.env.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap();
    let db = shared::db::Db::connect(&cfg.database_url).await.unwrap();
    let queues = shared::queue::Queues::connect(&cfg, &db).await.unwrap();
    queues
        .push(shared::domain::JobKind::Analysis, &id, "orphan-requeue")
        .await
        .unwrap();

    let job = s.api.wait_done(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "run once: {job}");
    assert_eq!(
        job["worker"], running["worker"],
        "finished by the worker that started it"
    );
    assert_eq!(job["history"], serde_json::json!([]));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !second.log_text().contains("not claimable") {
        assert!(
            std::time::Instant::now() < deadline,
            "the second worker never saw the duplicate:\n{}",
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.terminate(Duration::from_secs(10));
    second.terminate(Duration::from_secs(10));
}

/// Jobs wait while a worker with room takes none (its queue consumer died, or Redis lost the
/// messages): the watchdog says so on /ready, restarts the consumers and pushes the waiting jobs
/// again — long before the relay's own re-push (set to an hour here) would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_watchdog_restarts_a_stalled_pool_and_the_waiting_job_runs() {
    let work = tempfile::tempdir().unwrap();
    common::fixture_repo(work.path());
    let s = stack(
        work.path(),
        &[
            ("WORKER_STALL_SECS", "3".to_owned()),
            ("REPUSH_AFTER_SECS", "3600".to_owned()),
        ],
    )
    .await;
    let id = s.api.submit("analysis", work.path()).await;
    // Redis loses every message of this deployment's queues.
    let prefix = s.env.iter().find(|(k, _)| *k == "QUEUE_PREFIX").unwrap().1.clone();
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the job was pushed under {prefix}");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();

    let health_port = free_port();
    let mut env = s.env.clone();
    env.push(("WORKER_HEALTH_ADDR", format!("127.0.0.1:{health_port}")));
    let mut w = worker(work.path(), &env, "watched");
    let job = s.api.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", w.log_text());
    assert_eq!(job["attempts"], 1);
    let log = w.log_text();
    assert!(log.contains("worker pool stalled"), "{log}");
    let health = Api::new(health_port);
    let (status, ready) = health.get("/ready").await;
    assert_eq!(status, 200, "ready again after the restart: {ready}");
    assert_eq!(ready["checks"]["workers"]["status"], "up", "{ready}");
    assert!(
        health
            .metrics()
            .await
            .contains("autodevops_worker_pool_restarts_total 1")
    );
    w.terminate(Duration::from_secs(10));
}
