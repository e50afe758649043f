//! GPU memory readings for the metrics service: NVML when the NVIDIA driver is there, Ollama's
//! `/api/ps` otherwise, and no reading at all (never a made-up zero) when neither answers.
//!
//! The worker takes a sample when a chunk starts and ends ([`GpuSampler::sample`]) and every few
//! seconds in between ([`GpuSampler::run_periodic`]); [`publish`] puts one on the telemetry stream.

use nightshift_shared::clock::unix_ms as now_ms;
use nightshift_shared::measurements::{GpuReading, GpuSample, SampleTrigger, VramSource};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Library names tried in turn: the unversioned one only ships with the driver's dev package,
/// while containers given the GPU by the NVIDIA runtime mount only `libnvidia-ml.so.1`.
const NVML_LIBRARIES: [&str; 2] = ["libnvidia-ml.so", "libnvidia-ml.so.1"];

/// Longest wait for Ollama's `/api/ps`: a sample must never hold up a chunk for long.
const PS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("NVML: {0}")]
    Nvml(#[from] nvml_wrapper::error::NvmlError),
    #[error("NVML reading task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("Ollama /api/ps: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Ollama /api/ps answered {0}: the backend does not look like Ollama")]
    NotOllama(reqwest::StatusCode),
}

enum Source {
    Nvml(Arc<Nvml>),
    OllamaPs { url: String },
    None,
}

/// Reads the VRAM (and, with NVML, utilization and temperature) of the GPUs one worker uses.
pub struct GpuSampler {
    worker_id: String,
    host: String,
    source: Source,
    http: reqwest::Client,
    /// Set once `/api/ps` answered something other than Ollama's: it is not asked again.
    ps_disabled: AtomicBool,
    /// Set once a failed reading was logged, cleared when readings come back.
    failure_logged: AtomicBool,
}

impl GpuSampler {
    /// Tries NVML first; without it, falls back to Ollama's `/api/ps` at `ollama_url`
    /// (pass `None` when the backend is not Ollama). Says once, at `warn`, what it fell back to.
    pub fn new(
        worker_id: impl Into<String>,
        host: impl Into<String>,
        ollama_url: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        let source = match init_nvml() {
            Ok((nvml, count)) => {
                tracing::info!(gpus = count, "reading GPU memory through NVML");
                Source::Nvml(Arc::new(nvml))
            }
            Err(why) => match ollama_url {
                Some(url) => {
                    tracing::warn!(
                        reason = %why,
                        ollama = %url,
                        "NVML unavailable: VRAM figures will be Ollama's /api/ps size_vram \
                         (the loaded models' footprint, not the whole GPU)"
                    );
                    Source::OllamaPs { url }
                }
                None => {
                    tracing::warn!(
                        reason = %why,
                        "NVML unavailable and no Ollama to ask: no VRAM source, \
                         no GPU samples will be published"
                    );
                    Source::None
                }
            },
        };
        Self::with_source(worker_id.into(), host.into(), source, http)
    }

    /// A sampler that reads only Ollama's `/api/ps`, never NVML (tests, or hosts where NVML
    /// sees GPUs the worker's Ollama does not use).
    pub fn ollama_only(
        worker_id: impl Into<String>,
        host: impl Into<String>,
        ollama_url: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        let source = Source::OllamaPs { url: ollama_url.into() };
        Self::with_source(worker_id.into(), host.into(), source, http)
    }

    /// A sampler with no VRAM source: every [`GpuSampler::sample`] is `None`.
    pub fn disabled(worker_id: impl Into<String>, host: impl Into<String>) -> Self {
        Self::with_source(worker_id.into(), host.into(), Source::None, reqwest::Client::new())
    }

    fn with_source(worker_id: String, host: String, source: Source, http: reqwest::Client) -> Self {
        Self {
            worker_id,
            host,
            source,
            http,
            ps_disabled: AtomicBool::new(false),
            failure_logged: AtomicBool::new(false),
        }
    }

    /// Where readings come from, or `None` when there is no VRAM source.
    pub fn source(&self) -> Option<VramSource> {
        match &self.source {
            Source::Nvml(_) => Some(VramSource::Nvml),
            Source::OllamaPs { .. } if !self.ps_disabled.load(Ordering::Relaxed) => {
                Some(VramSource::OllamaPs)
            }
            Source::OllamaPs { .. } | Source::None => None,
        }
    }

    /// One reading of every GPU, or `None` when there is no source or it failed (logged).
    pub async fn sample(
        &self,
        trigger: SampleTrigger,
        batch_id: Option<&str>,
    ) -> Option<GpuSample> {
        let (source, gpus) = match &self.source {
            Source::None => return None,
            Source::Nvml(nvml) => {
                let nvml = nvml.clone();
                let read = tokio::task::spawn_blocking(move || read_nvml(&nvml)).await;
                match read.map_err(SampleError::from).and_then(|r| r) {
                    Ok(gpus) => {
                        if self.failure_logged.swap(false, Ordering::Relaxed) {
                            tracing::info!("NVML readings are back");
                        }
                        (VramSource::Nvml, gpus)
                    }
                    Err(e) => {
                        if !self.failure_logged.swap(true, Ordering::Relaxed) {
                            tracing::warn!(error = %e, "no VRAM reading: NVML failed");
                        }
                        return None;
                    }
                }
            }
            Source::OllamaPs { url } => {
                if self.ps_disabled.load(Ordering::Relaxed) {
                    return None;
                }
                match self.read_ollama_ps(url).await {
                    Ok(reading) => {
                        if self.failure_logged.swap(false, Ordering::Relaxed) {
                            tracing::info!(ollama = %url, "Ollama /api/ps answers again");
                        }
                        (VramSource::OllamaPs, vec![reading])
                    }
                    Err(e @ SampleError::NotOllama(_)) => {
                        self.ps_disabled.store(true, Ordering::Relaxed);
                        tracing::warn!(error = %e, "no VRAM source: no GPU samples will be published");
                        return None;
                    }
                    Err(e) => {
                        if !self.failure_logged.swap(true, Ordering::Relaxed) {
                            tracing::warn!(error = %e, "no VRAM reading: Ollama /api/ps failed");
                        }
                        return None;
                    }
                }
            }
        };
        if gpus.is_empty() {
            return None;
        }
        Some(GpuSample {
            worker_id: self.worker_id.clone(),
            host: self.host.clone(),
            at: now_ms(),
            source,
            trigger,
            batch_id: batch_id.map(str::to_owned),
            gpus,
        })
    }

    /// Samples every `every` until `shutdown`, handing each sample to `publish`.
    /// Returns at once when there is no VRAM source.
    pub async fn run_periodic<F, Fut>(
        self: Arc<Self>,
        every: Duration,
        publish: F,
        shutdown: CancellationToken,
    ) where
        F: Fn(GpuSample) -> Fut,
        Fut: Future<Output = ()>,
    {
        if self.source().is_none() {
            return;
        }
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Some(sample) = self.sample(SampleTrigger::Periodic, None).await {
                publish(sample).await;
            } else if self.source().is_none() {
                return;
            }
        }
    }

    async fn read_ollama_ps(&self, url: &str) -> Result<GpuReading, SampleError> {
        let response = self
            .http
            .get(format!("{}/api/ps", url.trim_end_matches('/')))
            .timeout(PS_TIMEOUT)
            .send()
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            return Err(SampleError::NotOllama(status));
        }
        let ps: PsResponse = response.error_for_status()?.json().await?;
        Ok(GpuReading {
            uuid: format!("ollama:{url}"),
            name: "ollama models".into(),
            memory_used_bytes: ps.models.iter().map(|m| m.size_vram).sum(),
            memory_total_bytes: None,
            memory_free_bytes: None,
            utilization_pct: None,
            temperature_c: None,
        })
    }
}

/// This machine's host name, for [`GpuSample::host`].
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Deserialize)]
struct PsResponse {
    #[serde(default)]
    models: Vec<PsModel>,
}

#[derive(Deserialize)]
struct PsModel {
    #[serde(default)]
    size_vram: u64,
}

/// NVML and how many GPUs it sees; an NVML that sees none (a driver without a GPU passed to
/// this container) is as good as none.
fn init_nvml() -> Result<(Nvml, u32), String> {
    let mut first_error = None;
    for library in NVML_LIBRARIES {
        match Nvml::builder().lib_path(std::ffi::OsStr::new(library)).init() {
            Ok(nvml) => {
                return match nvml.device_count() {
                    Ok(0) => Err("NVML sees no GPU".into()),
                    Ok(count) => Ok((nvml, count)),
                    Err(e) => Err(format!("NVML cannot count GPUs: {e}")),
                };
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{library}: {e}"));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "no NVML library to try".into()))
}

/// Reads every GPU NVML sees; a GPU whose memory cannot be read is left out (and logged), the
/// optional figures of one that can are `None` when unsupported.
fn read_nvml(nvml: &Nvml) -> Result<Vec<GpuReading>, SampleError> {
    let count = nvml.device_count()?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = match nvml.device_by_index(index) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(index, error = %e, "GPU not readable");
                continue;
            }
        };
        let memory = match device.memory_info() {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(index, error = %e, "GPU memory not readable");
                continue;
            }
        };
        gpus.push(GpuReading {
            uuid: device.uuid().unwrap_or_else(|_| format!("nvml-index:{index}")),
            name: device.name().unwrap_or_else(|_| "unknown GPU".into()),
            memory_used_bytes: memory.used,
            memory_total_bytes: Some(memory.total),
            memory_free_bytes: Some(memory.free),
            utilization_pct: device.utilization_rates().ok().map(|u| u.gpu),
            temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        });
    }
    Ok(gpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_sampler_yields_no_sample() {
        let sampler = GpuSampler::disabled("w1", "host");
        assert_eq!(sampler.source(), None);
        assert!(sampler.sample(SampleTrigger::ChunkStart, Some("b")).await.is_none());
    }

    #[test]
    fn ps_without_models_reads_as_empty() {
        let ps: PsResponse = serde_json::from_str("{}").unwrap();
        assert!(ps.models.is_empty());
    }
}
