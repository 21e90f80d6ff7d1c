//! Webhook deliveries of the App (App JWT): list them and ask for a redelivery.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;

use super::client::decode;
use super::{GithubApp, GithubError};

/// One webhook delivery as `GET /app/hook/deliveries` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct HookDelivery {
    pub id: i64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    pub status_code: i64,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
}

impl GithubApp {
    /// The most recent webhook deliveries (newest first), `per_page` clamped to 1..=100.
    pub async fn list_hook_deliveries(&self, per_page: u32) -> Result<Vec<HookDelivery>, GithubError> {
        let mut url = self.url("app/hook/deliveries")?;
        url.query_pairs_mut()
            .append_pair("per_page", &per_page.clamp(1, 100).to_string());
        let resp = self.app_call(Method::GET, url, None).await?;
        decode(&resp.body)
    }

    /// Asks GitHub to deliver `delivery_id` again (202 Accepted).
    pub async fn redeliver(&self, delivery_id: i64) -> Result<(), GithubError> {
        let url = self.url(&format!("app/hook/deliveries/{delivery_id}/attempts"))?;
        self.app_call(Method::POST, url, None).await.map(|_| ())
    }
}
