//! GitHub App client: App JWT and installation tokens, a REST client with retries, rate-limit
//! handling, ETags and throttling, and the calls the workers make (repositories, trees, check
//! runs, sticky comments, pull requests, webhook deliveries).

mod auth;
mod checks;
mod client;
mod comments;
mod config;
mod deliveries;
mod error;
mod etag;
mod heads;
pub mod probe;
mod pulls;
mod ratelimit;
mod repos;
mod throttle;
mod tree;
mod urls;

pub use checks::{Annotation, CheckConclusion, MAX_ANNOTATIONS_PER_REQUEST, MAX_OUTPUT_CHARS};
pub use client::{DEFAULT_MAX_CONCURRENT, GithubApp, Installation, RetryPolicy};
pub use comments::StickyComment;
pub use config::{DEFAULT_API_URL, DEFAULT_TIMEOUT, GithubConfig};
pub use deliveries::HookDelivery;
pub use error::GithubError;
pub use pulls::{FilePr, PrOutcome};
pub use repos::{PrFile, RepoInfo};
pub use throttle::{
    ContentThrottle, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_WAIT, DEFAULT_PER_HOUR, DEFAULT_PER_MINUTE, InFlight,
    LocalThrottle, RedisThrottle, ThrottleLimits,
};
pub use tree::{TreeLimits, TreeStats};
