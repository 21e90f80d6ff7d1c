//! Group commit of webhook deliveries: writer tasks take the deliveries waiting for them (up to
//! a batch) and record them in one transaction, so many deliveries share one commit (one WAL
//! flush) instead of paying one each. Each request is answered once its transaction committed.

use std::sync::Arc;

use shared::db::deliveries::{self, NewDelivery, Recorded};
use shared::db::jobs::NewJob;
use shared::db::{Db, DbError};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Deliveries recorded in one transaction at most.
pub const MAX_BATCH: usize = 64;
/// Writer tasks (transactions in flight at once).
pub const WRITERS: usize = 2;
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
    pub fn spawn(db: Db, writers: usize, max_batch: usize) -> Intake {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(db.clone(), rx.clone(), max_batch.max(1)));
        }
        Intake { tx }
    }

    /// Records a delivery and its jobs, as [`deliveries::record_with_jobs`] does, sharing a
    /// transaction with the deliveries that arrived meanwhile. Returns once it is committed.
    pub async fn record(&self, delivery: NewDelivery, jobs: Vec<NewJob>) -> Result<Recorded, IntakeError> {
        let (answer, rx) = oneshot::channel();
        let req = Request { delivery, jobs, answer };
        self.tx.send(req).await.map_err(|_| IntakeError::Stopped)?;
        Ok(rx.await.map_err(|_| IntakeError::Stopped)??)
    }
}

/// One writer: takes what is waiting (in arrival order), records it, answers, repeats.
async fn write(db: Db, rx: Arc<Mutex<mpsc::Receiver<Request>>>, max_batch: usize) {
    let mut buf = Vec::with_capacity(max_batch);
    loop {
        let n = rx.lock().await.recv_many(&mut buf, max_batch).await;
        if n == 0 {
            return;
        }
        metrics::histogram!("autodevops_webhook_batch_size").record(n as f64);
        let (batch, answers): (Vec<_>, Vec<_>) = buf.drain(..).map(|r| ((r.delivery, r.jobs), r.answer)).unzip();
        let results = deliveries::record_batch(&db.conn, batch).await;
        for (answer, result) in answers.into_iter().zip(results) {
            // A handler that went away (client disconnected) still had its delivery recorded.
            let _ = answer.send(result);
        }
    }
}
