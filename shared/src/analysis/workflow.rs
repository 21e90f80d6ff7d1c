//! GitHub Actions workflow model: typed structs serialised in a fixed, natural key order.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

#[derive(Serialize)]
pub(super) struct Workflow {
    pub(super) name: &'static str,
    pub(super) on: Triggers,
    pub(super) permissions: Permissions,
    pub(super) concurrency: Concurrency,
    pub(super) jobs: Jobs,
}

#[derive(Serialize)]
pub(super) struct Triggers {
    pub(super) push: Branches,
    pub(super) pull_request: Branches,
}

#[derive(Serialize)]
pub(super) struct Branches {
    pub(super) branches: &'static [&'static str],
}

#[derive(Serialize)]
pub(super) struct Permissions {
    pub(super) contents: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Concurrency {
    pub(super) group: &'static str,
    pub(super) cancel_in_progress: bool,
}

/// Jobs in insertion order.
pub(super) struct Jobs(pub(super) Vec<(String, Job)>);

impl Serialize for Jobs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, job) in &self.0 {
            map.serialize_entry(id, job)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Job {
    pub(super) name: String,
    pub(super) runs_on: &'static str,
    pub(super) timeout_minutes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) defaults: Option<Defaults>,
    pub(super) steps: Vec<Step>,
}

#[derive(Serialize)]
pub(super) struct Defaults {
    pub(super) run: RunDefaults,
}

#[derive(Serialize)]
pub(super) struct RunDefaults {
    #[serde(rename = "working-directory")]
    pub(super) working_directory: String,
}

#[derive(Serialize)]
pub(super) struct Step {
    pub(super) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) uses: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) with: BTreeMap<&'static str, Input>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) run: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Input {
    Text(String),
    Flag(bool),
}

impl From<&str> for Input {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

impl From<String> for Input {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<bool> for Input {
    fn from(b: bool) -> Self {
        Self::Flag(b)
    }
}

pub(super) fn uses(name: &str, action: &'static str, with: Vec<(&'static str, Input)>) -> Step {
    Step {
        name: name.to_string(),
        uses: Some(action),
        with: with.into_iter().collect(),
        run: None,
    }
}

pub(super) fn run(name: &str, command: impl Into<String>) -> Step {
    Step {
        name: name.to_string(),
        uses: None,
        with: BTreeMap::new(),
        run: Some(command.into()),
    }
}
