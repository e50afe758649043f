//! `/v1/files`: streamed uploads, listing, retrieval, content and deletion.

use crate::AppState;
use crate::store::PART_SIZE;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nightshift_shared::http::ApiError;
use nightshift_shared::http::CurrentOwner;
use nightshift_shared::http::extract::{ApiMultipart, ApiPath, ApiQuery};
use nightshift_shared::openai::{FileDeleted, FileObject, List};

/// The only purpose Nightshift accepts for uploads.
const BATCH_PURPOSE: &str = "batch";

pub fn routes(state: &AppState) -> Router<AppState> {
    // Multipart framing adds a little to the file itself; the upload loop enforces the exact limit.
    let body_limit = usize::try_from(state.limits.max_file_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/v1/files",
            get(list).post(upload).layer(DefaultBodyLimit::max(body_limit.saturating_add(1 << 20))),
        )
        .route("/v1/files/{id}", get(retrieve).delete(delete))
        .route("/v1/files/{id}/content", get(content))
}

// `Page` is not flattened in: serde_urlencoded cannot parse numbers inside a flattened struct.
#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    purpose: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<List<FileObject>>, ApiError> {
    if q.order.as_deref().is_some_and(|o| o != "desc") {
        return Err(ApiError::invalid_code(
            "Invalid 'order': files are listed newest first ('desc') only.",
            Some("order"),
            "invalid_value",
        ));
    }
    let limit = super::parse_limit(q.limit.as_deref(), 10_000, 10_000)?;
    let mut rows =
        state.store.list_files(&owner.0, q.purpose.as_deref(), q.after.as_deref(), limit).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let data = rows.iter().map(|r| r.to_object()).collect();
    Ok(Json(List::new(data, has_more, |f: &FileObject| &f.id)))
}

async fn upload(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Json<FileObject>, ApiError> {
    let mut purpose: Option<String> = None;
    let mut stored: Option<(String, String, u64)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                if let Some((id, _, _)) = &stored {
                    state.store.delete_file(id).await?;
                }
                return Err(multipart_error(e, state.limits.max_file_bytes));
            }
        };
        match field.name() {
            Some("purpose") => {
                purpose = Some(field.text().await.map_err(|e| multipart_error(e, 0))?);
            }
            Some("file") if stored.is_none() => {
                let filename = field.file_name().unwrap_or("upload.jsonl").to_owned();
                if filename.contains('\0') {
                    return Err(ApiError::invalid_value(
                        "The file's name holds a NUL character; rename the file and upload it again.",
                        "file",
                    ));
                }
                let id = format!("file-{}", uuid::Uuid::new_v4().simple());
                state.store.begin_file(&id, &owner.0, &filename).await?;
                match store_parts(&state, &id, field).await {
                    Ok(bytes) => stored = Some((id, filename, bytes)),
                    Err(e) => {
                        state.store.delete_file(&id).await?;
                        return Err(e);
                    }
                }
            }
            _ => {}
        }
    }
    let Some((id, filename, bytes)) = stored else {
        return Err(ApiError::missing("file"));
    };
    let purpose = match purpose {
        Some(p) if p == BATCH_PURPOSE => p,
        other => {
            state.store.delete_file(&id).await?;
            return Err(match other {
                None => ApiError::missing("purpose"),
                Some(p) => ApiError::invalid_code(
                    format!("Invalid purpose '{p}'. Nightshift stores files with purpose 'batch'."),
                    Some("purpose"),
                    "invalid_value",
                ),
            });
        }
    };
    let row = state.store.finish_file(&id, &purpose, &filename, bytes as i64).await?;
    state.metrics.files_uploaded.inc();
    state.metrics.file_bytes.inc_by(bytes);
    tracing::info!(file_id = %id, bytes, "file stored");
    Ok(Json(row.to_object()))
}

/// Writes the field's bytes in [`PART_SIZE`] parts as they arrive; returns the file's size.
async fn store_parts(state: &AppState, id: &str, mut field: Field<'_>) -> Result<u64, ApiError> {
    let max = state.limits.max_file_bytes;
    let mut buffer = Vec::with_capacity(PART_SIZE);
    let mut part_no = 0;
    let mut total = 0u64;
    while let Some(piece) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
        total += piece.len() as u64;
        if total > max {
            return Err(too_large(max));
        }
        let mut piece = &piece[..];
        while !piece.is_empty() {
            let take = (PART_SIZE - buffer.len()).min(piece.len());
            buffer.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if buffer.len() == PART_SIZE {
                state.store.put_part(id, part_no, &buffer).await?;
                part_no += 1;
                buffer.clear();
            }
        }
    }
    if !buffer.is_empty() {
        state.store.put_part(id, part_no, &buffer).await?;
    }
    Ok(total)
}

fn too_large(max: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "The file is larger than the {max} bytes allowed (NIGHTSHIFT_MAX_FILE_BYTES)."
    ))
}

fn multipart_error(e: MultipartError, max: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        ApiError::invalid(format!("Malformed multipart upload: {}.", e.body_text()), None)
    }
}

async fn retrieve(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FileObject>, ApiError> {
    let row = state.store.get_file(&owner.0, &id).await?.ok_or_else(|| no_such_file(&id))?;
    Ok(Json(row.to_object()))
}

async fn content(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let row = state.store.get_file(&owner.0, &id).await?.ok_or_else(|| no_such_file(&id))?;
    let body = Body::from_stream(state.store.file_bytes(&row.id));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, row.bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", row.filename.replace('"', "")),
            ),
        ],
        body,
    )
        .into_response())
}

async fn delete(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FileDeleted>, ApiError> {
    let row = state.store.get_file(&owner.0, &id).await?.ok_or_else(|| no_such_file(&id))?;
    if let Some(batch) = state.store.file_in_use(&row.id).await? {
        return Err(ApiError::Conflict(format!(
            "File {id} is the input of batch {batch}, which is still running; cancel the batch or \
             wait for it to end before deleting the file."
        )));
    }
    state.store.delete_file(&row.id).await?;
    Ok(Json(FileDeleted { id, object: "file".into(), deleted: true }))
}

pub fn no_such_file(id: &str) -> ApiError {
    ApiError::NotFound(format!("No such File object: {id}"))
}
