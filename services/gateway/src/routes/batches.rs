//! `/v1/batches`: create, retrieve, list and cancel.

use super::Page;
use super::files::no_such_file;
use crate::AppState;
use crate::store::{NewBatch, now};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use nightshift_shared::http::ApiError;
use nightshift_shared::http::CurrentOwner;
use nightshift_shared::http::extract::{ApiBody, ApiPath, ApiQuery};
use nightshift_shared::messages::BatchControl;
use nightshift_shared::openai::{Batch, BatchStatus, Endpoint, List};
use serde_json::Value;
use std::collections::BTreeMap;

/// The one completion window OpenAI accepts, and so do we.
const COMPLETION_WINDOW: &str = "24h";
const COMPLETION_WINDOW_SECS: i64 = 24 * 60 * 60;
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/batches", get(list).post(create))
        .route("/v1/batches/{id}", get(retrieve))
        .route("/v1/batches/{id}/cancel", post(cancel))
}

async fn create(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiBody(body): ApiBody,
) -> Result<Json<Batch>, ApiError> {
    let request = CreateBatch::parse(&body)?;
    if request.input_file_id.contains('\0') {
        return Err(no_such_file(&request.input_file_id));
    }
    let file = state
        .store
        .get_file(&owner.0, &request.input_file_id)
        .await?
        .ok_or_else(|| no_such_file(&request.input_file_id))?;
    if file.purpose != "batch" {
        return Err(ApiError::invalid_code(
            format!(
                "File {} has purpose '{}'; a batch needs a file with purpose 'batch'.",
                file.id, file.purpose
            ),
            Some("input_file_id"),
            "invalid_value",
        ));
    }
    let created_at = now();
    let new = NewBatch {
        id: format!("batch_{}", uuid::Uuid::new_v4().simple()),
        owner: owner.0,
        endpoint: request.endpoint.as_str().into(),
        input_file_id: file.id,
        completion_window: COMPLETION_WINDOW.into(),
        metadata: request.metadata,
        created_at,
        expires_at: created_at + COMPLETION_WINDOW_SECS,
    };
    let row = state.store.insert_batch(&new).await?;
    state.metrics.batches_created.inc();
    crate::events::emit_row_detached(&state, &row);
    tracing::info!(batch_id = %row.id, input_file_id = %row.input_file_id, "batch created");
    state.lifecycle.start(&state, &row.id);
    Ok(Json(row.to_object()))
}

/// The body of `POST /v1/batches`, checked field by field so each mistake names its parameter.
struct CreateBatch {
    input_file_id: String,
    endpoint: Endpoint,
    metadata: Option<BTreeMap<String, String>>,
}

impl CreateBatch {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid(format!("The request body is not valid JSON: {e}."), None)
        })?;
        let Value::Object(map) = value else {
            return Err(ApiError::invalid("The request body must be a JSON object.", None));
        };
        let string = |name: &str| -> Result<String, ApiError> {
            match map.get(name) {
                None | Some(Value::Null) => Err(ApiError::missing(name)),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(ApiError::invalid_code(
                    format!("Invalid type for '{name}': expected a string."),
                    Some(name),
                    "invalid_type",
                )),
            }
        };
        let input_file_id = string("input_file_id")?;
        let endpoint = string("endpoint")?;
        let endpoint = Endpoint::parse(&endpoint).ok_or_else(|| {
            ApiError::invalid_code(
                format!(
                    "Invalid 'endpoint': '{endpoint}'. Supported: {}.",
                    Endpoint::ALL.map(Endpoint::as_str).join(", ")
                ),
                Some("endpoint"),
                "invalid_value",
            )
        })?;
        let window = string("completion_window")?;
        if window != COMPLETION_WINDOW {
            return Err(ApiError::invalid_code(
                format!("Invalid 'completion_window': '{window}'. Only '24h' is supported."),
                Some("completion_window"),
                "invalid_value",
            ));
        }
        let metadata = match map.get("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(parse_metadata(m)?),
            Some(_) => {
                return Err(ApiError::invalid_code(
                    "Invalid type for 'metadata': expected an object of string values.",
                    Some("metadata"),
                    "invalid_type",
                ));
            }
        };
        Ok(Self { input_file_id, endpoint, metadata })
    }
}

fn parse_metadata(
    m: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = |message: String| ApiError::invalid_code(message, Some("metadata"), "invalid_value");
    if m.len() > MAX_METADATA_PAIRS {
        return Err(bad(format!(
            "Invalid 'metadata': {} pairs given, at most {MAX_METADATA_PAIRS} are allowed.",
            m.len()
        )));
    }
    m.iter()
        .map(|(k, v)| {
            if k.contains('\0') || v.as_str().is_some_and(|v| v.contains('\0')) {
                return Err(bad(format!(
                    "Invalid 'metadata': the pair {} holds a NUL character.",
                    Value::String(k.clone())
                )));
            }
            if k.chars().count() > MAX_METADATA_KEY {
                return Err(bad(format!(
                    "Invalid 'metadata': key '{k}' is longer than {MAX_METADATA_KEY} characters."
                )));
            }
            match v {
                Value::String(s) if s.chars().count() <= MAX_METADATA_VALUE => Ok((k.clone(), s.clone())),
                Value::String(_) => Err(bad(format!(
                    "Invalid 'metadata': the value of '{k}' is longer than {MAX_METADATA_VALUE} characters."
                ))),
                _ => Err(bad(format!("Invalid 'metadata': the value of '{k}' must be a string."))),
            }
        })
        .collect()
}

async fn retrieve(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Batch>, ApiError> {
    let row = state.store.get_batch(&owner.0, &id).await?.ok_or_else(|| no_such_batch(&id))?;
    Ok(Json(row.to_object()))
}

async fn list(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<Batch>>, ApiError> {
    let limit = page.limit(20, 100)?;
    let mut rows = state.store.list_batches(&owner.0, page.after.as_deref(), limit).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let data = rows.iter().map(|r| r.to_object()).collect();
    Ok(Json(List::new(data, has_more, |b: &Batch| &b.id)))
}

async fn cancel(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Batch>, ApiError> {
    let row =
        state.store.cancel_batch(&owner.0, &id, now()).await?.ok_or_else(|| no_such_batch(&id))?;
    match row.status {
        BatchStatus::Cancelling => {
            {
                let (state, id) = (state.clone(), row.id.clone());
                state.lifecycle.clone().spawn(async move {
                    crate::lifecycle::control::signal(&state, &id, BatchControl::Cancelled).await;
                });
            }
            crate::events::emit_row_detached(&state, &row);
            tracing::info!(batch_id = %row.id, "batch cancelling");
            Ok(Json(row.to_object()))
        }
        other => Err(ApiError::Conflict(format!(
            "Cannot cancel a batch with status '{}'.",
            other.as_str()
        ))),
    }
}

fn no_such_batch(id: &str) -> ApiError {
    ApiError::NotFound(format!("No such Batch object: {id}"))
}
