//! Prometheus counters of the gateway, served on `/metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub files_uploaded: IntCounter,
    pub file_bytes: IntCounter,
    pub batches_created: IntCounter,
    pub batches_ended: IntCounterVec,
    pub requests_validated: IntCounter,
    pub chunks_published: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let batches_ended = IntCounterVec::new(
            Opts::new("nightshift_gateway_batches_ended_total", "Batches reaching a final status."),
            &["status"],
        )?;
        registry.register(Box::new(batches_ended.clone()))?;
        Ok(Self {
            files_uploaded: counter(
                "nightshift_gateway_files_uploaded_total",
                "Files stored by POST /v1/files.",
            )?,
            file_bytes: counter(
                "nightshift_gateway_file_bytes_total",
                "Bytes stored by POST /v1/files.",
            )?,
            batches_created: counter(
                "nightshift_gateway_batches_created_total",
                "Batches created.",
            )?,
            requests_validated: counter(
                "nightshift_gateway_requests_validated_total",
                "Requests of valid batches, counted once validated.",
            )?,
            chunks_published: counter(
                "nightshift_gateway_chunks_published_total",
                "Chunks published to JetStream (acknowledged by the server).",
            )?,
            batches_ended,
            registry,
        })
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
