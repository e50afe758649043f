//! SQL fragments several statements share, as macros so `concat!` can splice them into static
//! statement text.

/// How a re-reported request line overwrites its row.
macro_rules! requests_on_conflict {
    () => {
        concat!(
            "ON CONFLICT (batch_id, line) DO UPDATE SET chunk_index = EXCLUDED.chunk_index, ",
            "worker_id = EXCLUDED.worker_id, delivery = EXCLUDED.delivery, ",
            "finished_at = EXCLUDED.finished_at, model = EXCLUDED.model, ",
            "queue_wait_ms = EXCLUDED.queue_wait_ms, latency_ms = EXCLUDED.latency_ms, ",
            "attempts = EXCLUDED.attempts, error = EXCLUDED.error, ",
            "prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens, ",
            "cached_tokens = EXCLUDED.cached_tokens, load_ms = EXCLUDED.load_ms",
        )
    };
}

/// How a GPU's latest reading replaces an older one in `metrics_gpus` (`cur`).
macro_rules! gpus_on_conflict {
    () => {
        concat!(
            "ON CONFLICT (host, gpu_uuid) DO UPDATE SET worker_id = EXCLUDED.worker_id, ",
            "at = EXCLUDED.at, gpu_name = EXCLUDED.gpu_name, source = EXCLUDED.source, ",
            "memory_used_bytes = EXCLUDED.memory_used_bytes, ",
            "memory_total_bytes = EXCLUDED.memory_total_bytes, ",
            "memory_free_bytes = EXCLUDED.memory_free_bytes, ",
            "utilization_pct = EXCLUDED.utilization_pct, temperature_c = EXCLUDED.temperature_c ",
            "WHERE EXCLUDED.at >= cur.at",
        )
    };
}

/// How a minute's newly folded samples (`EXCLUDED`) merge into its row (`m`).
macro_rules! minutes_on_conflict {
    () => {
        concat!(
            "ON CONFLICT (host, gpu_uuid, minute) DO UPDATE SET ",
            "samples = m.samples + EXCLUDED.samples, ",
            "min_used_bytes = CASE WHEN EXCLUDED.min_used_bytes < m.min_used_bytes ",
            "THEN EXCLUDED.min_used_bytes ELSE m.min_used_bytes END, ",
            "max_used_bytes = CASE WHEN EXCLUDED.max_used_bytes > m.max_used_bytes ",
            "THEN EXCLUDED.max_used_bytes ELSE m.max_used_bytes END, ",
            "avg_used_bytes = (m.avg_used_bytes * m.samples ",
            "+ EXCLUDED.avg_used_bytes * EXCLUDED.samples) / (m.samples + EXCLUDED.samples), ",
            "last_used_bytes = CASE WHEN EXCLUDED.last_at >= m.last_at ",
            "THEN EXCLUDED.last_used_bytes ELSE m.last_used_bytes END, ",
            "gpu_name = CASE WHEN EXCLUDED.last_at >= m.last_at ",
            "THEN EXCLUDED.gpu_name ELSE m.gpu_name END, ",
            "source = CASE WHEN EXCLUDED.last_at >= m.last_at ",
            "THEN EXCLUDED.source ELSE m.source END, ",
            "worker_id = CASE WHEN EXCLUDED.last_at >= m.last_at ",
            "THEN EXCLUDED.worker_id ELSE m.worker_id END, ",
            "memory_total_bytes = CASE WHEN EXCLUDED.last_at >= m.last_at ",
            "THEN EXCLUDED.memory_total_bytes ELSE m.memory_total_bytes END, ",
            "last_at = CASE WHEN EXCLUDED.last_at > m.last_at ",
            "THEN EXCLUDED.last_at ELSE m.last_at END",
        )
    };
}

/// A batch's request aggregates (columns of `read::Totals`).
/// Latencies and waits count only requests that reached the backend (`attempts > 0`).
macro_rules! totals_columns {
    () => {
        concat!(
            "COUNT(*) AS reported, ",
            "COUNT(*) FILTER (WHERE error IS NULL) AS succeeded, ",
            "COUNT(*) FILTER (WHERE error IS NOT NULL) AS failed, ",
            "AVG(latency_ms) FILTER (WHERE attempts > 0) AS latency_mean, ",
            "MAX(latency_ms) FILTER (WHERE attempts > 0) AS latency_max, ",
            "AVG(queue_wait_ms) FILTER (WHERE attempts > 0) AS queue_wait_mean, ",
            "CAST(SUM(prompt_tokens) AS BIGINT) AS prompt, ",
            "CAST(SUM(completion_tokens) AS BIGINT) AS completion, ",
            "CAST(SUM(cached_tokens) AS BIGINT) AS cached, ",
            "CAST(SUM(prompt_tokens) FILTER (WHERE cached_tokens IS NOT NULL) AS BIGINT) ",
            "AS prompt_cached",
        )
    };
}

/// GPU readings in `[$1, $2]`, raw and rolled up, oldest first (columns of
/// [`super::read::GpuPoint`]), of the workers the condition put in place of `{workers}` admits.
macro_rules! gpu_points_sql {
    () => {
        concat!(
            "SELECT host, gpu_uuid, gpu_name, source, at, memory_used_bytes AS used_bytes, ",
            "memory_used_bytes AS peak_bytes, memory_total_bytes AS total_bytes ",
            "FROM metrics_gpu_samples WHERE at BETWEEN $1 AND $2 AND {workers}",
            " UNION ALL ",
            "SELECT host, gpu_uuid, gpu_name, source, last_at AS at, last_used_bytes AS used_bytes, ",
            "max_used_bytes AS peak_bytes, memory_total_bytes AS total_bytes ",
            "FROM metrics_gpu_minutes WHERE minute BETWEEN $1 - 60000 AND $2 ",
            "AND last_at BETWEEN $1 AND $2 AND {workers}",
            " ORDER BY at",
        )
    };
}

/// The ids of the samples a rollup round moves: past their retention (`$1`, batch-tagged ones
/// `$2`), oldest first, at most `$3`. Ordered by id too, so two statements pick the same rows.
macro_rules! due_samples {
    () => {
        concat!(
            "SELECT id FROM metrics_gpu_samples ",
            "WHERE at < $1 AND (batch_id IS NULL OR at < $2) ORDER BY at, id LIMIT $3",
        )
    };
}
