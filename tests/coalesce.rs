//! Coalescing and de-duplication of GitHub jobs in the jobs table, on Postgres and SQLite:
//! ten rapid pushes to a pull request leave one analysis (of the last commit); the same commit
//! twice is one job; a delivery and its jobs are recorded together, once.

mod common;

use common::records::{delivery, sha};

use serde_json::json;
use shared::db::deliveries;
use shared::db::jobs::{self, NewJob};
use shared::db::{Db, job::Model as Job};
use shared::domain::{GithubTarget, JobKind, JobSource, RepoName};

fn pr_analysis(sha: &str, pr: Option<i64>, git_ref: &str) -> NewJob {
    NewJob {
        kind: JobKind::Analysis,
        queue: "analysis".into(),
        source: JobSource::Repo {
            repo: RepoName::try_from("octo-org/public-repo".to_owned()).unwrap(),
            git_ref: Some(git_ref.into()),
        },
        tenant: Some("installation:2311213".into()),
        max_attempts: 3,
        github: Some(GithubTarget {
            installation_id: 2311213,
            head_sha: Some(sha.into()),
            pr_number: pr,
            trigger: json!({ "type": "pull_request" }),
            delivery_id: None,
        }),
    }
}

async fn job(db: &Db, id: &str) -> Job {
    jobs::get(&db.conn, id, None).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rapid_pushes_to_a_pull_request_leave_one_analysis_of_the_last_commit() {
    for (_dir, db) in common::migrated_databases().await {
        let mut ids: Vec<String> = Vec::new();
        for i in 0..10 {
            let ins = jobs::insert(&db.conn, pr_analysis(&sha(i), Some(7), "refs/pull/7/head"))
                .await
                .unwrap();
            assert!(!ins.deduplicated);
            if i > 0 {
                assert_eq!(
                    ins.superseded,
                    vec![ids[i - 1].clone()],
                    "each push supersedes the one before"
                );
            }
            ids.push(ins.job.id);
        }
        let last = ids.last().unwrap();
        for (i, id) in ids[..9].iter().enumerate() {
            let j = job(&db, id).await;
            assert_eq!(j.status, "cancelled");
            assert_eq!(
                j.superseded_by.as_deref(),
                Some(ids[i + 1].as_str()),
                "points at its successor"
            );
            assert!(j.finished_at.is_some());
        }
        let newest = job(&db, last).await;
        assert_eq!(newest.status, "queued");
        assert_eq!(newest.head_sha.as_deref(), Some(sha(9).as_str()));
        assert_eq!(newest.pr_number, Some(7));

        // Another pull request and a push to the branch are separate work.
        let other_pr = jobs::insert(&db.conn, pr_analysis(&sha(9), Some(8), "refs/pull/8/head"))
            .await
            .unwrap();
        let push = jobs::insert(&db.conn, pr_analysis(&sha(9), None, "refs/heads/main"))
            .await
            .unwrap();
        assert!(other_pr.superseded.is_empty() && push.superseded.is_empty());
        assert!(!other_pr.deduplicated && !push.deduplicated);
        assert_eq!(job(&db, last).await.status, "queued");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_commit_twice_is_one_job_and_a_running_job_is_superseded_too() {
    for (_dir, db) in common::migrated_databases().await {
        let a = jobs::insert(&db.conn, pr_analysis(&sha(1), Some(3), "refs/pull/3/head"))
            .await
            .unwrap();
        let again = jobs::insert(&db.conn, pr_analysis(&sha(1), Some(3), "refs/pull/3/head"))
            .await
            .unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.job.id, a.job.id);

        // The first job starts; a new head arrives while it runs.
        let lease = chrono::Utc::now() + chrono::Duration::seconds(30);
        let claimed = jobs::claim(&db.conn, &a.job.id, "w1", lease).await.unwrap();
        assert!(claimed.is_some());
        let b = jobs::insert(&db.conn, pr_analysis(&sha(2), Some(3), "refs/pull/3/head"))
            .await
            .unwrap();
        assert_eq!(b.superseded, vec![a.job.id.clone()]);
        // The running worker's lease renewal and its fenced finish both fail now.
        assert!(!jobs::renew_lease(&db.conn, &a.job.id, "w1", lease).await.unwrap());
        let finished = jobs::finish(
            &db.conn,
            &a.job.id,
            "w1",
            jobs::Outcome::Succeeded {
                result: json!({}),
                history: json!([]),
            },
        )
        .await
        .unwrap();
        assert!(!finished, "a superseded run cannot record a result");
        assert_eq!(job(&db, &a.job.id).await.status, "cancelled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_and_its_jobs_are_recorded_together_once() {
    for (_dir, db) in common::migrated_databases().await {
        let first = deliveries::record_with_jobs(
            &db.conn,
            delivery("d-1"),
            vec![pr_analysis(&sha(5), Some(9), "refs/pull/9/head")],
        )
        .await
        .unwrap()
        .expect("new delivery");
        assert_eq!(first.len(), 1);
        let recorded = deliveries::get(&db.conn, "d-1").await.unwrap().unwrap();
        assert_eq!(recorded.job_id.as_deref(), Some(first[0].job.id.as_str()));

        // GitHub redelivers the same delivery: nothing new.
        let again = deliveries::record_with_jobs(
            &db.conn,
            delivery("d-1"),
            vec![pr_analysis(&sha(6), Some(9), "refs/pull/9/head")],
        )
        .await
        .unwrap();
        assert!(again.is_none());
        let all = jobs::list(
            &db.conn,
            &jobs::JobFilter {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(all.len(), 1, "the duplicate delivery created no job");
        assert_eq!(all[0].head_sha.as_deref(), Some(sha(5).as_str()));
    }
}
