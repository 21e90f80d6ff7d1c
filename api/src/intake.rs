//! Group commit of webhook deliveries: writer tasks take the deliveries waiting for them (up to
//! a batch) and record them in one transaction, so many deliveries share one commit (one WAL
//! flush) instead of paying one each. Each request is answered once its transaction committed;
//! then the batch's new jobs are pushed to their queues, concurrently.

use std::sync::Arc;

use futures::future::join_all;
use shared::db::deliveries::{self, NewDelivery, Recorded};
use shared::db::job::Model as Job;
use shared::db::jobs::NewJob;
use shared::db::{Db, DbError};
use shared::queue::Queues;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Deliveries recorded in one transaction at most.
pub const MAX_BATCH: usize = 64;
/// Writer tasks (transactions in flight at once).
pub const WRITERS: usize = 4;
/// Requests that may wait for a writer; beyond that, handlers wait to enqueue.
const QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the webhook intake writer has stopped")]
    Stopped,
}

struct Request {
    delivery: NewDelivery,
    jobs: Vec<NewJob>,
    answer: oneshot::Sender<Result<Recorded, DbError>>,
}

/// The handle handlers record deliveries through (cheap to clone).
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Request>,
}

impl Intake {
    /// Starts `writers` writer tasks on the current runtime, each committing up to `max_batch`
    /// deliveries per transaction. They stop when every handle is dropped.
    pub fn spawn(db: Db, queues: Queues, writers: usize, max_batch: usize) -> Intake {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(db.clone(), queues.clone(), rx.clone(), max_batch.max(1)));
        }
        Intake { tx }
    }

    /// Records a delivery and its jobs, as [`deliveries::record_with_jobs`] does, sharing a
    /// transaction with the deliveries that arrived meanwhile. Returns once it is committed;
    /// the writer then pushes the new (not deduplicated) jobs to their queues.
    pub async fn record(&self, delivery: NewDelivery, jobs: Vec<NewJob>) -> Result<Recorded, IntakeError> {
        let (answer, rx) = oneshot::channel();
        let req = Request { delivery, jobs, answer };
        self.tx.send(req).await.map_err(|_| IntakeError::Stopped)?;
        Ok(rx.await.map_err(|_| IntakeError::Stopped)??)
    }
}

/// One writer: takes what is waiting (in arrival order), records it, answers, repeats.
async fn write(db: Db, queues: Queues, rx: Arc<Mutex<mpsc::Receiver<Request>>>, max_batch: usize) {
    let mut buf = Vec::with_capacity(max_batch);
    loop {
        let n = rx.lock().await.recv_many(&mut buf, max_batch).await;
        if n == 0 {
            return;
        }
        metrics::histogram!("autodevops_webhook_batch_size").record(n as f64);
        let (batch, answers): (Vec<_>, Vec<_>) = buf.drain(..).map(|r| ((r.delivery, r.jobs), r.answer)).unzip();
        let results = deliveries::record_batch(&db.conn, batch).await;
        let mut created = Vec::new();
        for (answer, result) in answers.into_iter().zip(results) {
            if let Ok(Some(inserted)) = &result {
                created.extend(inserted.iter().filter(|i| !i.deduplicated).map(|i| i.job.clone()));
            }
            // A handler that went away (client disconnected) still had its delivery recorded.
            let _ = answer.send(result);
        }
        if !created.is_empty() {
            tokio::spawn(push(db.clone(), queues.clone(), created));
        }
    }
}

/// Pushes jobs stored claimed for their push (see `deliveries::record_with_jobs`), all at
/// once: the queue connection sends them together. A job whose push fails goes back to the
/// outbox and the relay pushes it later.
async fn push(db: Db, queues: Queues, jobs: Vec<Job>) {
    let pushes = jobs.iter().map(|job| shared::relay::push_claimed(&db, &queues, job));
    for (job, res) in jobs.iter().zip(join_all(pushes).await) {
        if let Err(e) = res {
            tracing::warn!(job_id = %job.id, error = %e, "queue unavailable; job accepted into the outbox");
        }
    }
}
