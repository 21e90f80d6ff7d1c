//! Group commit of webhook deliveries (`deliveries::record_batch`, `api::intake::Intake`), on
//! Postgres and SQLite: deliveries in one transaction behave as if recorded one after the
//! other (a redelivery in the same batch creates nothing, a later push supersedes an earlier
//! one, the same commit twice is one job), and one bad delivery does not fail the others.

mod common;

use common::records::{delivery, sha};

use migration::{Migrator, MigratorTrait};
use serde_json::json;
use shared::config::DatabaseUrl;
use shared::db::Db;
use shared::db::deliveries::{self, NewDelivery};
use shared::db::jobs::{self, NewJob};
use shared::domain::{GithubTarget, JobKind, JobSource, RepoName};

fn pr_analysis(sha: &str, pr: i64) -> NewJob {
    NewJob {
        kind: JobKind::Analysis,
        queue: "analysis".into(),
        source: JobSource::Repo {
            repo: RepoName::try_from("octo-org/public-repo".to_owned()).unwrap(),
            git_ref: Some(format!("refs/pull/{pr}/head")),
        },
        tenant: Some("installation:2311213".into()),
        max_attempts: 3,
        github: Some(GithubTarget {
            installation_id: 2311213,
            head_sha: Some(sha.into()),
            pr_number: Some(pr),
            trigger: json!({ "type": "pull_request" }),
            delivery_id: None,
        }),
    }
}

async fn all_jobs(db: &Db) -> Vec<shared::db::job::Model> {
    let filter = jobs::JobFilter {
        limit: 500,
        ..Default::default()
    };
    jobs::list(&db.conn, &filter).await.unwrap()
}

async fn linked_job(db: &Db, delivery: &str) -> Option<String> {
    deliveries::get(&db.conn, delivery).await.unwrap().unwrap().job_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_behaves_like_its_deliveries_in_arrival_order() {
    for (_dir, db) in common::migrated_databases().await {
        let ping = NewDelivery {
            event: "ping".into(),
            action: None,
            ..delivery("d-ping")
        };
        let batch = vec![
            (delivery("d-1"), vec![pr_analysis(&sha(1), 9)]),
            // A later push to the same pull request, in the same transaction.
            (delivery("d-2"), vec![pr_analysis(&sha(2), 9)]),
            // GitHub redelivers d-1 while the batch is open: nothing is created.
            (delivery("d-1"), vec![pr_analysis(&sha(3), 9)]),
            (ping, vec![]),
            // The same commit again: the active job is returned, and the delivery linked to it.
            (delivery("d-3"), vec![pr_analysis(&sha(2), 9)]),
        ];
        // The shared transaction itself (record_batch would hide its failure by recording
        // each delivery alone).
        let results = deliveries::record_all(&db.conn, batch).await.expect("one transaction");
        assert_eq!(results.len(), 5);
        let first = &results[0].as_ref().expect("new delivery")[0];
        let second = &results[1].as_ref().expect("new delivery")[0];
        assert!(!first.deduplicated && !second.deduplicated);
        assert_eq!(
            second.superseded,
            vec![first.job.id.clone()],
            "the later push supersedes"
        );
        assert!(results[2].is_none(), "the redelivery in the same batch is a duplicate");
        assert_eq!(results[3].as_ref().map(Vec::len), Some(0));
        let third = &results[4].as_ref().expect("new delivery")[0];
        assert!(third.deduplicated);
        assert_eq!(third.job.id, second.job.id);

        let jobs = all_jobs(&db).await;
        assert_eq!(jobs.len(), 2, "the redelivery and the same commit created no job");
        let old = jobs.iter().find(|j| j.id == first.job.id).unwrap();
        assert_eq!(old.status, "cancelled");
        assert_eq!(old.superseded_by.as_deref(), Some(second.job.id.as_str()));
        let new = jobs.iter().find(|j| j.id == second.job.id).unwrap();
        assert_eq!(new.status, "queued");
        assert!(new.enqueued_at.is_some(), "stored claimed for the caller's push");
        assert!(
            jobs.iter().all(|j| j.head_sha.as_deref() != Some(sha(3).as_str())),
            "the redelivery's payload was not used"
        );
        assert_eq!(linked_job(&db, "d-1").await.as_deref(), Some(first.job.id.as_str()));
        assert_eq!(linked_job(&db, "d-2").await.as_deref(), Some(second.job.id.as_str()));
        assert_eq!(
            linked_job(&db, "d-3").await.as_deref(),
            Some(second.job.id.as_str()),
            "a deduplicated delivery points at the active job"
        );
        assert_eq!(linked_job(&db, "d-ping").await, None);

        // Redelivered in a later batch: still nothing new.
        let again = deliveries::record_batch(
            &db.conn,
            vec![
                (delivery("d-2"), vec![pr_analysis(&sha(4), 9)]),
                (delivery("d-3"), vec![]),
            ],
        )
        .await;
        assert!(again.into_iter().all(|r| r.unwrap().is_none()));
        assert_eq!(all_jobs(&db).await.len(), 2);

        // Two more pushes in one batch, and another pull request: the newest push supersedes the
        // queued job of an earlier batch and the other push of its batch; the other pull request
        // is left alone.
        let results = deliveries::record_all(
            &db.conn,
            vec![
                (delivery("d-5"), vec![pr_analysis(&sha(5), 9)]),
                (delivery("d-6"), vec![pr_analysis(&sha(6), 10)]),
                (delivery("d-7"), vec![pr_analysis(&sha(7), 9)]),
            ],
        )
        .await
        .expect("one transaction");
        let job = |i: usize| results[i].as_ref().expect("new delivery")[0].clone();
        let mut cancelled = vec![second.job.id.clone(), job(0).job.id];
        cancelled.sort();
        assert_eq!(job(2).superseded, cancelled);
        assert!(job(1).superseded.is_empty());
        let jobs = all_jobs(&db).await;
        let status = |id: &str| jobs.iter().find(|j| j.id == id).unwrap().clone();
        for id in &cancelled {
            assert_eq!(status(id).status, "cancelled");
            assert_eq!(status(id).superseded_by.as_deref(), Some(job(2).job.id.as_str()));
        }
        assert_eq!(status(&job(1).job.id).status, "queued");
        assert_eq!(status(&job(2).job.id).status, "queued");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_delivery_does_not_fail_the_others_in_its_batch() {
    // Postgres refuses a NUL character in text (SQLite stores it), so that delivery fails.
    let db = Db::connect(&DatabaseUrl::Postgres(common::fresh_postgres().await))
        .await
        .expect("connect");
    Migrator::up(&db.conn, None).await.expect("migrate");
    let bad = NewDelivery {
        action: Some("synchro\0nize".into()),
        ..delivery("d-bad")
    };
    let batch = vec![
        (delivery("d-1"), vec![pr_analysis(&sha(1), 1)]),
        (bad, vec![pr_analysis(&sha(2), 2)]),
        (delivery("d-3"), vec![pr_analysis(&sha(3), 3)]),
    ];
    let results = deliveries::record_batch(&db.conn, batch).await;
    assert_eq!(results.len(), 3);
    assert!(results[1].is_err(), "the bad delivery fails: {:?}", results[1]);
    let ok: Vec<_> = [&results[0], &results[2]]
        .into_iter()
        .map(|r| r.as_ref().expect("good deliveries are recorded").as_ref().expect("new"))
        .collect();
    let jobs = all_jobs(&db).await;
    assert_eq!(jobs.len(), 2, "the bad delivery's job was rolled back");
    for (d, inserted) in ["d-1", "d-3"].into_iter().zip(ok) {
        assert_eq!(linked_job(&db, d).await.as_deref(), Some(inserted[0].job.id.as_str()));
    }
    assert!(deliveries::get(&db.conn, "d-bad").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_through_the_intake_writers_are_each_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("t.db").display());
    let redis = vec![
        ("REDIS_URL".to_owned(), common::redis_url()),
        ("QUEUE_PREFIX".to_owned(), common::fresh_redis_prefix().await),
    ];
    for (url, mut vars) in [(common::fresh_postgres().await, redis), (sqlite, vec![])] {
        vars.push(("DATABASE_URL".to_owned(), url));
        let cfg = shared::config::Config::from_vars(vars).expect("config");
        let db = Db::connect(&cfg.database_url).await.expect("connect");
        Migrator::up(&db.conn, None).await.expect("migrate");
        let queues = shared::queue::Queues::connect(&cfg, &db).await.expect("queues");
        queues.setup().await.expect("queue setup");
        let intake = api::intake::Intake::spawn(db.clone(), queues, 2, 16);
        // 100 deliveries, each sent three times at once, one pull request per delivery.
        let mut tasks = Vec::new();
        for round in 0..3 {
            for i in 0..100 {
                let intake = intake.clone();
                tasks.push(tokio::spawn(async move {
                    let id = format!("d-{i}");
                    let jobs = vec![pr_analysis(&sha(i * 10 + round), i as i64)];
                    (i, intake.record(delivery(&id), jobs).await.expect("recorded"))
                }));
            }
        }
        let mut fresh = vec![0; 100];
        for t in tasks {
            let (i, recorded) = t.await.unwrap();
            if let Some(inserted) = recorded {
                assert_eq!(inserted.len(), 1);
                fresh[i] += 1;
            }
        }
        assert!(
            fresh.iter().all(|&n| n == 1),
            "each delivery recorded exactly once: {fresh:?}"
        );
        let jobs = all_jobs(&db).await;
        assert_eq!(jobs.len(), 100, "one job per delivery, none for the redeliveries");
        for i in 0..100 {
            let linked = linked_job(&db, &format!("d-{i}")).await.expect("linked");
            let job = jobs.iter().find(|j| j.id == linked).expect("linked job exists");
            assert_eq!(job.pr_number, Some(i as i64));
        }
    }
}
