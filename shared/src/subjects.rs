//! JetStream stream, consumer and subject names shared by every service.

/// Work-queue stream holding batch chunks waiting for a worker.
pub const CHUNKS_STREAM: &str = "NIGHTSHIFT_CHUNKS";
/// Subject prefix of chunk messages: `nightshift.chunks.<batch_id>`.
pub const CHUNKS_SUBJECT_PREFIX: &str = "nightshift.chunks";
/// Durable pull consumer every worker shares, so adding a worker adds capacity.
pub const WORKERS_CONSUMER: &str = "nightshift-workers";

/// Stream holding one message per finished request.
pub const RESULTS_STREAM: &str = "NIGHTSHIFT_RESULTS";
/// Subject prefix of result messages: `nightshift.results.<batch_id>.<chunk_index>`.
pub const RESULTS_SUBJECT_PREFIX: &str = "nightshift.results";
/// Durable pull consumer of the result collector.
pub const COLLECTOR_CONSUMER: &str = "nightshift-collector";

/// JetStream object store holding results too large for one message; a result message then
/// carries the object's name.
pub const OBJECTS_BUCKET: &str = "NIGHTSHIFT_RESULT_OBJECTS";

/// Stream holding the control state (cancelled, expired) of running batches: the last message on
/// `nightshift.control.<batch_id>` is the batch's state. (A plain stream rather than a key-value
/// bucket, which the NATS 2.9 servers of Debian stable cannot create for current clients.)
pub const CONTROL_STREAM: &str = "NIGHTSHIFT_CONTROL";
/// Subject prefix of control messages.
pub const CONTROL_SUBJECT_PREFIX: &str = "nightshift.control";

/// Subject holding the control state of `batch_id`.
pub fn control_subject(batch_id: &str) -> String {
    format!("{CONTROL_SUBJECT_PREFIX}.{batch_id}")
}

/// Stream carrying measurements to the metrics service.
pub const TELEMETRY_STREAM: &str = "NIGHTSHIFT_TELEMETRY";
/// Durable pull consumer of the metrics service.
pub const METRICS_CONSUMER: &str = "nightshift-metrics";
/// [`crate::measurements::ChunkReport`]s, one per finished chunk.
pub const TELEMETRY_CHUNKS: &str = "nightshift.telemetry.chunks";
/// [`crate::measurements::GpuSample`]s.
pub const TELEMETRY_GPU: &str = "nightshift.telemetry.gpu";
/// [`crate::measurements::ModelReload`]s.
pub const TELEMETRY_RELOADS: &str = "nightshift.telemetry.reloads";
/// [`crate::measurements::BatchEvent`]s.
pub const TELEMETRY_BATCHES: &str = "nightshift.telemetry.batches";
/// Wildcard covering every telemetry subject.
pub const TELEMETRY_ALL: &str = "nightshift.telemetry.>";

/// Subject a chunk of `batch_id` is published on.
pub fn chunk_subject(batch_id: &str) -> String {
    format!("{CHUNKS_SUBJECT_PREFIX}.{batch_id}")
}

/// JetStream de-duplication id of a chunk: publishing it twice stores it once.
pub fn chunk_msg_id(batch_id: &str, chunk_index: u32) -> String {
    format!("{batch_id}.{chunk_index}")
}

/// Every result subject of `batch_id`, as a wildcard.
pub fn results_of_batch(batch_id: &str) -> String {
    format!("{RESULTS_SUBJECT_PREFIX}.{batch_id}.>")
}

/// Subject the results of one chunk are published on.
pub fn result_subject(batch_id: &str, chunk_index: u32) -> String {
    format!("{RESULTS_SUBJECT_PREFIX}.{batch_id}.{chunk_index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_nest_under_their_stream_prefix() {
        assert_eq!(chunk_subject("batch_1"), "nightshift.chunks.batch_1");
        assert_eq!(result_subject("batch_1", 7), "nightshift.results.batch_1.7");
    }
}
