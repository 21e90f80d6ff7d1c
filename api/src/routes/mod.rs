pub mod health;
pub mod jobs;
