//! `batchctl report`: a batch's performance metrics from the metrics service.

use crate::{Client, Outcome};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    pub batch_id: String,
}

pub async fn run(metrics: &Client, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let value = metrics.batch_metrics(&args.batch_id).await?;
    println!("{}", render_batch_metrics(&value));
    Ok(Outcome::Success)
}

/// The metrics service's report for one batch, for a human.
// The metrics service's JSON is not settled yet: pretty JSON until it is.
pub fn render_batch_metrics(metrics: &serde_json::Value) -> String {
    serde_json::to_string_pretty(metrics).unwrap_or_else(|_| metrics.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_render_as_indented_json() {
        let out = super::render_batch_metrics(&serde_json::json!({"rate_per_second": 0.2}));
        assert_eq!(out, "{\n  \"rate_per_second\": 0.2\n}");
    }
}
