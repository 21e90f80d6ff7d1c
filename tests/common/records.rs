//! Rows for storage-level tests: a pull request's webhook delivery, commit SHAs.

use shared::db::deliveries::NewDelivery;

/// A `pull_request` `synchronize` delivery of GitHub's example repository, not yet recorded.
pub fn delivery(id: &str) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        event: "pull_request".into(),
        action: Some("synchronize".into()),
        installation_id: Some(2311213),
        repo: Some("octo-org/public-repo".into()),
        outcome: "accepted",
        reason: None,
        job_id: None,
    }
}

/// The `i`th of a series of distinct commit SHAs.
pub fn sha(i: usize) -> String {
    format!("{i:040x}")
}
