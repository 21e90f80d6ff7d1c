//! The outbox: with Redis stopped, jobs are still accepted (and /ready says the queue is down);
//! when Redis returns, every accepted job runs once. Messages Redis lost are pushed again.
//! Each test runs its own redis-server so it can stop it.

mod common;

use std::time::Duration;

use common::{Api, OwnRedis, Proc, fixture_repos, free_port};

async fn setup(
    redis: &OwnRedis,
    work: &std::path::Path,
    extra: &[(&'static str, String)],
) -> (Vec<(&'static str, String)>, u16) {
    let database_url = common::fresh_postgres().await;
    let port = free_port();
    let mut env = vec![
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis.url()),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
    ];
    env.extend(extra.iter().cloned());
    assert!(common::command(work, &env).arg("migrate").status().unwrap().success());
    (env, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_accepted_while_redis_is_down_all_run_once_it_returns() {
    let mut redis = OwnRedis::start();
    let work = tempfile::tempdir().unwrap();
    let repos = fixture_repos(work.path(), 40);
    // Jobs pushed just before the crash die with Redis: they are pushed again after 5 s.
    let (env, port) = setup(&redis, work.path(), &[("REPUSH_AFTER_SECS", "5".to_owned())]).await;
    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    let _worker = Proc::spawn(work.path(), &["worker"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;

    let mut ids = Vec::new();
    for dir in &repos[..10] {
        ids.push(api.submit("analysis", dir).await);
    }
    redis.kill();
    // Accepted while Redis is down: 202, kept in the Postgres outbox, answered fast.
    let burst = std::time::Instant::now();
    for dir in &repos[10..] {
        ids.push(api.submit("analysis", dir).await);
    }
    eprintln!("30 submissions with Redis down took {:?}", burst.elapsed());
    let (status, ready) = api.get("/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["queue"]["status"], "down");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    tokio::time::sleep(Duration::from_secs(10)).await;
    redis.restart();
    let back = std::time::Instant::now();

    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(90)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        // A run cut off by the outage (the worker's queue consumer died under it) is run again;
        // such an extra attempt is explained in the history, never silent.
        let attempts = job["attempts"].as_i64().unwrap();
        let explained = job["history"].as_array().unwrap().len() as i64;
        assert_eq!(attempts, 1 + explained, "every extra attempt is in the history: {job}");
    }
    eprintln!("all {} jobs done {:?} after Redis returned", ids.len(), back.elapsed());
    assert_eq!(api.get("/ready").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_lost_with_redis_are_pushed_again() {
    let mut redis = OwnRedis::start();
    let work = tempfile::tempdir().unwrap();
    let repos = fixture_repos(work.path(), 5);
    let (env, port) = setup(&redis, work.path(), &[("REPUSH_AFTER_SECS", "2".to_owned())]).await;
    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    let mut ids = Vec::new();
    for dir in &repos {
        ids.push(api.submit("ci_gen", dir).await);
    }
    // The jobs are on Redis, and no worker runs yet. Redis restarts empty: the messages are gone.
    redis.kill();
    redis.restart();
    let _worker = Proc::spawn(work.path(), &["worker"], &env);
    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_stall_longer_than_half_a_second_does_not_stop_the_pool() {
    // redis-rs's default 500 ms response timeout turns a slow answer into a fatal stream error
    // that stops apalis-redis workers (apalis-redis#76). Block Redis for 3 s mid-run.
    let redis = OwnRedis::start();
    let work = tempfile::tempdir().unwrap();
    let repos = fixture_repos(work.path(), 20);
    let (env, port) = setup(&redis, work.path(), &[]).await;
    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    let worker = Proc::spawn(work.path(), &["worker"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    let mut ids = Vec::new();
    for dir in &repos[..10] {
        ids.push(api.submit("sync", dir).await);
    }
    let url = redis.url();
    let stall = tokio::task::spawn_blocking(move || {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("DEBUG").arg("SLEEP").arg(3).query(&mut conn).unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for dir in &repos[10..] {
        ids.push(api.submit("sync", dir).await);
    }
    stall.await.unwrap();
    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
    // The stall did not stop (and force a restart of) any worker of the pool.
    let log = worker.log_text();
    assert!(
        !log.contains("worker stopped with an error"),
        "the pool stopped during the stall:\n{log}"
    );
}
