//! Prometheus gauges of the latest GPU readings and counters of consumed telemetry, on `/metrics`.

use nightshift_shared::measurements::GpuSample;
use prometheus::{
    Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Kinds of telemetry message, the `kind` label of the consumed counter.
pub const KINDS: [&str; 5] = ["chunk", "gpu", "reload", "batch", "invalid"];

#[derive(Clone)]
pub struct Exporter {
    registry: Registry,
    memory_used: IntGaugeVec,
    memory_total: IntGaugeVec,
    utilization: IntGaugeVec,
    temperature: IntGaugeVec,
    consumed: IntCounterVec,
    reloads: IntCounterVec,
    /// Time of the reading each GPU gauge shows, so a late older sample cannot replace it.
    shown_at: Arc<Mutex<HashMap<(String, String), i64>>>,
}

impl Exporter {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        fn register<C: Collector + Clone + 'static>(
            registry: &Registry,
            c: C,
        ) -> Result<C, prometheus::Error> {
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let gpu_gauge = |name: &str, help: &str| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), &["gpu", "worker"])?)
        };
        Ok(Self {
            memory_used: gpu_gauge(
                "nightshift_gpu_memory_used_bytes",
                "GPU memory in use at the latest sample (Ollama's models only without NVML).",
            )?,
            memory_total: gpu_gauge(
                "nightshift_gpu_memory_total_bytes",
                "GPU memory installed (NVML only).",
            )?,
            utilization: gpu_gauge(
                "nightshift_gpu_utilization_percent",
                "GPU compute utilization at the latest sample (NVML only).",
            )?,
            temperature: gpu_gauge(
                "nightshift_gpu_temperature_celsius",
                "GPU temperature at the latest sample (NVML only).",
            )?,
            consumed: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "nightshift_metrics_telemetry_messages_total",
                        "Telemetry messages consumed, by kind (invalid: undecodable, dropped).",
                    ),
                    &["kind"],
                )?,
            )?,
            reloads: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "nightshift_model_reloads_total",
                        "Model loads after warm-up reported by workers.",
                    ),
                    &["worker", "model"],
                )?,
            )?,
            registry,
            shown_at: Arc::default(),
        })
    }

    /// Counts one consumed message of `kind` (one of [`KINDS`]).
    pub fn consumed(&self, kind: &str) {
        self.consumed.with_label_values(&[kind]).inc();
    }

    /// Messages consumed so far, all kinds together.
    pub fn consumed_total(&self) -> u64 {
        KINDS.iter().map(|k| self.consumed.with_label_values(&[*k]).get()).sum()
    }

    pub fn reload(&self, worker: &str, model: &str) {
        self.reloads.with_label_values(&[worker, model]).inc();
    }

    /// Sets the gauges of every GPU in `sample`; figures the sample lacks are left out.
    pub fn gpu_sample(&self, sample: &GpuSample) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let Ok(mut shown_at) = self.shown_at.lock() else { return };
        for gpu in &sample.gpus {
            let at =
                shown_at.entry((gpu.uuid.clone(), sample.worker_id.clone())).or_insert(i64::MIN);
            if sample.at < *at {
                continue;
            }
            *at = sample.at;
            let labels = [gpu.uuid.as_str(), sample.worker_id.as_str()];
            self.memory_used.with_label_values(&labels).set(clamp(gpu.memory_used_bytes));
            if let Some(total) = gpu.memory_total_bytes {
                self.memory_total.with_label_values(&labels).set(clamp(total));
            }
            if let Some(pct) = gpu.utilization_pct {
                self.utilization.with_label_values(&labels).set(i64::from(pct));
            }
            if let Some(c) = gpu.temperature_c {
                self.temperature.with_label_values(&labels).set(i64::from(c));
            }
        }
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
