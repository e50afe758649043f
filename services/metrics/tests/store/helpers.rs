//! The telemetry the store tests record.

use nightshift_shared::measurements::{
    ChunkReport, GpuReading, GpuSample, RequestReport, SampleTrigger, VramSource,
};
use nightshift_shared::messages::TokenUsage;

/// Bytes of one GB as the reports count it.
pub const GIB: u64 = 1 << 30;

pub fn request(line: u32, latency_ms: f64, error: Option<&str>) -> RequestReport {
    RequestReport {
        line,
        model: Some("llama3.2:1b".into()),
        queue_wait_ms: 5.0,
        latency_ms,
        attempts: 1,
        error: error.map(Into::into),
        usage: error.is_none().then_some(TokenUsage {
            prompt_tokens: Some(10),
            completion_tokens: Some(20),
            cached_tokens: None,
        }),
        ollama: None,
    }
}

pub fn chunk(
    batch_id: &str,
    index: u32,
    worker: &str,
    requests: Vec<RequestReport>,
) -> ChunkReport {
    ChunkReport {
        batch_id: batch_id.into(),
        chunk_index: index,
        worker_id: worker.into(),
        delivery: 1,
        received_at: 1_000,
        finished_at: 2_000,
        requests,
    }
}

/// One GPU's reading of `used` bytes on `worker`'s host `h<worker>`.
pub fn gpu_sample(
    worker: &str,
    gpu: &str,
    at: i64,
    used: u64,
    batch_id: Option<&str>,
) -> GpuSample {
    GpuSample {
        worker_id: worker.into(),
        host: format!("h-{worker}"),
        at,
        source: VramSource::Nvml,
        trigger: if batch_id.is_some() { SampleTrigger::ChunkEnd } else { SampleTrigger::Periodic },
        batch_id: batch_id.map(Into::into),
        gpus: vec![GpuReading {
            uuid: gpu.into(),
            name: "NVIDIA H100".into(),
            memory_used_bytes: used,
            memory_total_bytes: Some(80 * GIB),
            memory_free_bytes: Some(80 * GIB - used),
            utilization_pct: Some(50),
            temperature_c: Some(60),
        }],
    }
}

pub fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or(f64::NAN);
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}
