//! `GET /v1/queues`: depth of every queue, for operators and autoscalers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/queues", web::get().to(queues));
}

async fn queues(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let depth = shared::db::jobs::depth(&state.db.conn).await?;
    shared::telemetry::record_depth(&depth);
    let queues: serde_json::Map<String, serde_json::Value> = depth
        .iter()
        .map(|(kind, d)| (kind.as_str().to_owned(), json!(d)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "backend": state.queues.backend_name(), "queues": queues })))
}
