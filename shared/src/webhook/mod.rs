//! GitHub webhook decisions without I/O: which deliveries become which jobs ([`route`]), the
//! policy from the environment ([`policy`]) and the per-repository `.autodevops.yml`
//! ([`repo_config`]).

pub mod command;
mod payload;
pub mod policy;
pub mod repo_config;
pub mod route;

pub use command::Command;
pub use payload::{Envelope, Payload};
pub use policy::{RepoPattern, RoutingPolicy};
pub use repo_config::{ConfigProblem, RepoConfig};
pub use route::{JobIntent, ReplyTarget, Route, Trigger, reply_target, route, route_read};
