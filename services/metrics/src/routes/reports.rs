//! `GET /v1/reports/multi-batch?batch_id=a&batch_id=b…`: the stability report over the caller's
//! batches, in the order given, with optional `max_vram_delta_gb`, `max_variance_pct` and
//! `min_success_pct` thresholds.

use super::no_batch;
use crate::AppState;
use crate::report::{batch, multi};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use nightshift_shared::http::ApiError;
use nightshift_shared::http::CurrentOwner;
use nightshift_shared::http::extract::ApiQuery;
use nightshift_shared::reports::{MultiBatchReport, Thresholds};

/// Most batches one report may cover.
pub const MAX_BATCHES: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/reports/multi-batch", get(report))
}

async fn report(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiQuery(params): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<MultiBatchReport>, ApiError> {
    let (ids, thresholds) = parse(&params)?;
    let mut batches = Vec::with_capacity(ids.len());
    for id in &ids {
        let metrics =
            batch::load(&state.store, id, &owner.0, state.retention.vram_window_ms()).await?;
        batches.push(metrics.ok_or_else(|| no_batch(id))?);
    }
    Ok(Json(multi::evaluate(&batches, thresholds)))
}

/// The batch ids (repeated `batch_id`, or comma-separated) and thresholds of a request.
fn parse(params: &[(String, String)]) -> Result<(Vec<String>, Thresholds), ApiError> {
    let mut ids = Vec::new();
    let mut t = Thresholds::default();
    for (key, value) in params {
        let number = || -> Result<f64, ApiError> {
            value.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(
                || {
                    ApiError::invalid_value(
                        format!("Invalid '{key}': {value:?} is not a non-negative number."),
                        key,
                    )
                },
            )
        };
        match key.as_str() {
            "batch_id" | "batch_ids" => ids.extend(
                value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
            ),
            "max_vram_delta_gb" => t.max_vram_delta_gb = number()?,
            "max_variance_pct" => t.max_variance_pct = number()?,
            "min_success_pct" => t.min_success_pct = number()?,
            _ => {
                return Err(ApiError::invalid_value(format!("Unknown parameter '{key}'."), key));
            }
        }
    }
    if ids.is_empty() {
        return Err(ApiError::Invalid {
            message: "Missing required parameter: 'batch_id' (repeat it for each batch).".into(),
            param: Some("batch_id".into()),
            code: Some("missing_required_parameter".into()),
        });
    }
    if ids.len() > MAX_BATCHES {
        return Err(ApiError::invalid_value(
            format!("Too many batches: {} (at most {MAX_BATCHES}).", ids.len()),
            "batch_id",
        ));
    }
    Ok((ids, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn ids_keep_their_order_and_thresholds_default_to_the_plan() {
        let (ids, t) =
            parse(&params(&[("batch_id", "b2"), ("batch_id", "b1,b3"), ("max_variance_pct", "5")]))
                .unwrap();
        assert_eq!(ids, ["b2", "b1", "b3"]);
        assert_eq!(t.max_variance_pct, 5.0);
        assert_eq!(t.max_vram_delta_gb, 0.5);
        assert_eq!(t.min_success_pct, 100.0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(parse(&params(&[])).is_err());
        assert!(parse(&params(&[("batch_id", "b"), ("max_vram_delta_gb", "x")])).is_err());
        assert!(parse(&params(&[("batch_id", "b"), ("min_success_pct", "-1")])).is_err());
        assert!(parse(&params(&[("batch_id", "b"), ("colour", "red")])).is_err());
    }
}
