//! The library shared by the API and the workers: configuration, domain types, storage,
//! queues, the offline analyser, telemetry and webhook routing.

pub mod analysis;
pub mod config;
pub mod db;
pub mod dlq;
pub mod domain;
pub mod github;
pub mod json;
pub mod models;
pub mod pool_health;
pub mod queue;
pub mod relay;
pub mod telemetry;
pub mod webhook;
