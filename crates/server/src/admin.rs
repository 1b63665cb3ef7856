//! Key management over HTTP, for admins: `GET /v1/keys` lists the keys (ids, names, roles,
//! dates; never secrets or hashes), `POST /v1/keys` with `{"name", "role", "agency"?}` creates
//! one and returns it once, `DELETE /v1/keys/:id` revokes one. The same keys file as
//! `cxlake keys`; a change is in force at once in this process and within a second in others
//! reading the file. Without a keys file there is nothing to manage (404).

use super::auth::{Principal, Role};
use super::state::{reply, ApiError, State};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, Body, IntoResponse};
use serde_json::{json, Value};
use std::sync::Arc;

/// The keys file, if the principal is an admin and the server has one.
fn store<'a>(state: &'a State, principal: &Principal) -> Result<&'a super::keys::KeyStore, ApiError> {
    if principal.role != Role::Admin {
        return Err(ApiError::forbidden(principal, format!("role '{}' may not manage keys", principal.role.label())));
    }
    state.limits.keys.as_deref().ok_or_else(|| super::state::ApiError::new(StatusCode::NOT_FOUND, "this server runs without a keys file (--keys)"))
}

fn public(k: &super::keys::KeyEntry) -> Value {
    json!({"id": k.id, "name": k.name, "role": k.role.name(), "agency": k.role.agency(), "created_at": k.created_at, "revoked_at": k.revoked_at})
}

#[handler]
pub async fn list_keys(state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    match store(&state, &principal) {
        Ok(keys) => reply(StatusCode::OK, json!({"keys": keys.list().iter().map(public).collect::<Vec<_>>()})),
        Err(e) => e.into_response(),
    }
}

#[handler]
pub async fn add_key(body: Body, state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    if let Err(e) = store(&state, &principal) {
        return e.into_response();
    }
    let Ok(bytes) = body.into_bytes_limit(64 * 1024).await else {
        return super::state::ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return super::state::ApiError::new(StatusCode::BAD_REQUEST, "body must be JSON: {\"name\": ..., \"role\": ..., \"agency\": ...}").into_response();
    };
    let (Some(name), Some(role)) = (v["name"].as_str(), v["role"].as_str()) else {
        return super::state::ApiError::new(StatusCode::BAD_REQUEST, "name and role are required").into_response();
    };
    let role = match Role::parse(role, v["agency"].as_str()) {
        Ok(r) => r,
        Err(e) => return super::state::ApiError::new(StatusCode::BAD_REQUEST, e).into_response(),
    };
    let (name, shared) = (name.to_string(), state.0.clone());
    // The change waits for the keys file's lock (another process may hold it): off the async
    // workers.
    let added = tokio::task::spawn_blocking(move || match shared.limits.keys.as_deref() {
        Some(keys) => keys.update(|file| Ok(file.add(&name, role))),
        None => Err(super::keys::KeyError::Invalid("this server runs without a keys file".into())),
    })
    .await
    .unwrap_or_else(|e| Err(super::keys::KeyError::File { path: "keys".into(), reason: format!("key creation failed: {e}") }));
    match added {
        Ok((entry, key)) => {
            tracing::info!(target: "cxlake::access", admin = principal.key_id.as_deref().unwrap_or("-"), id = %entry.id, role = %entry.role.label(), "key added");
            let mut out = public(&entry);
            out["key"] = json!(key);
            reply(StatusCode::CREATED, out)
        }
        Err(e) => super::state::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[handler]
pub async fn revoke_key(id: Path<String>, state: Data<&Arc<State>>, principal: Data<&Principal>) -> poem::Response {
    if let Err(e) = store(&state, &principal) {
        return e.into_response();
    }
    let (wanted, shared) = (id.0.clone(), state.0.clone());
    let revoked = tokio::task::spawn_blocking(move || match shared.limits.keys.as_deref() {
        Some(keys) => keys.update(|file| file.revoke(&wanted).map(public)),
        None => Err(super::keys::KeyError::Invalid("this server runs without a keys file".into())),
    })
    .await
    .unwrap_or_else(|e| Err(super::keys::KeyError::File { path: "keys".into(), reason: format!("revocation failed: {e}") }));
    match revoked {
        Ok(entry) => {
            tracing::info!(target: "cxlake::access", admin = principal.key_id.as_deref().unwrap_or("-"), id = %id.0, "key revoked");
            reply(StatusCode::OK, entry)
        }
        Err(super::keys::KeyError::Invalid(e)) => super::state::ApiError::new(StatusCode::NOT_FOUND, e).into_response(),
        Err(e) => super::state::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
