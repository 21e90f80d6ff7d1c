//! Job errors, classified: a retryable error is tried again with backoff; a permanent one
//! ends the job at once (dead).

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad input or a state that another attempt cannot fix.
    #[error("{0}")]
    Permanent(String),
    /// A transient failure (I/O, network, timeouts).
    #[error("{0}")]
    Retryable(String),
    /// Not a failure: the job waits until `until` (the tenant's model budget resets) and the
    /// attempt is not counted.
    #[error("deferred until {until}: {reason}")]
    Deferred {
        until: chrono::DateTime<chrono::Utc>,
        reason: String,
    },
}

impl JobError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable(_))
    }
}

impl From<shared::analysis::AnalysisError> for JobError {
    fn from(e: shared::analysis::AnalysisError) -> Self {
        use shared::analysis::AnalysisError as A;
        match e {
            A::Io { .. } => JobError::Retryable(e.to_string()),
            _ => JobError::Permanent(e.to_string()),
        }
    }
}
