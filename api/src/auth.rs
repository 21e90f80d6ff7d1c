//! API-key authentication: `Authorization: Bearer <key>` against API_KEYS, compared in
//! constant time. With no keys configured the API is open (it then binds to loopback only).

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: the owner of the API key, which is also the tenant its jobs belong to.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: Option<String>,
}

impl Caller {
    /// Whose jobs the caller may read and manage: its own tenant's, or every tenant's for the
    /// operator's (bare) key and an API without keys. Webhook jobs belong to their
    /// installation, so only the operator reads those through the API.
    pub fn scope(&self) -> Option<&str> {
        self.tenant
            .as_deref()
            .filter(|t| *t != shared::config::OPERATOR_KEY_OWNER)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal("app state missing".into())));
        };
        ready(authenticate(state, req))
    }
}

fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let keys = &state.cfg.api_keys;
    if keys.is_empty() {
        return Ok(Caller { tenant: None });
    }
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    // Check every key (no early exit) so timing does not tell which one came close.
    let mut owner = None;
    for k in keys {
        if bool::from(k.key.expose_secret().as_bytes().ct_eq(presented.as_bytes())) {
            owner = Some(k.owner.clone());
        }
    }
    owner.map(|o| Caller { tenant: Some(o) }).ok_or(ApiError::Unauthorized)
}
