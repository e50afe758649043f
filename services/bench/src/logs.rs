//! Figures the gateway logs (JSON lines): how long validation, publishing and finalizing of a
//! batch took, by its own clock.

use std::path::Path;
use std::time::Duration;

/// The `elapsed_ms` of the first event with `message` about `batch_id` in a JSON log.
pub fn elapsed(log: &str, batch_id: &str, message: &str) -> Option<Duration> {
    log.lines().filter(|l| l.contains(batch_id)).find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let fields = v.get("fields")?;
        (fields.get("message")?.as_str()? == message)
            .then(|| fields.get("elapsed_ms")?.as_u64())
            .flatten()
            .map(Duration::from_millis)
    })
}

/// The gateway's own timings of a batch's stages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GatewayTimings {
    pub validated: Option<Duration>,
    pub published: Option<Duration>,
    pub ended: Option<Duration>,
}

impl GatewayTimings {
    pub fn read(log: &Path, batch_id: &str) -> Self {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        Self {
            validated: elapsed(&text, batch_id, "batch validated"),
            published: elapsed(&text, batch_id, "chunks published"),
            ended: elapsed(&text, batch_id, "batch ended"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_is_found_by_batch_and_message() {
        let log = r#"{"timestamp":"t","level":"INFO","fields":{"message":"chunks published","published":500,"elapsed_ms":812},"target":"nightshift_gateway::ingest","span":{"batch_id":"batch_b","name":"ingest"}}
{"timestamp":"t","level":"INFO","fields":{"message":"chunks published","published":5,"elapsed_ms":7},"target":"nightshift_gateway::ingest","span":{"batch_id":"batch_a","name":"ingest"}}
not json batch_a
{"timestamp":"t","level":"INFO","fields":{"message":"batch ended","status":"completed","elapsed_ms":95},"span":{"batch_id":"batch_a","name":"finalize"}}"#;
        assert_eq!(elapsed(log, "batch_a", "chunks published"), Some(Duration::from_millis(7)));
        assert_eq!(elapsed(log, "batch_a", "batch ended"), Some(Duration::from_millis(95)));
        assert_eq!(elapsed(log, "batch_b", "chunks published"), Some(Duration::from_millis(812)));
        assert_eq!(elapsed(log, "batch_c", "chunks published"), None);
    }
}
