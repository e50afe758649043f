//! The report's section per figure: what each is made of, the deployments side by side (a
//! column group or rows each), so that they read against each other.

use crate::config::Deployment;
use crate::cpu::{CpuUse, ProcUse};
use crate::scenarios::ceiling::Ceiling;
use crate::scenarios::efficiency::Efficiency;
use crate::scenarios::ingest::Ingest;
use crate::scenarios::real::RealEfficiency;
use crate::scenarios::stability::Stability;
use crate::tables::{Table, int, ms, opt, pct, secs};
use crate::timeline::Moments;
use std::fmt::Write;
use std::time::Duration;

/// "Distributed", "Standalone": a deployment's name at the start of a sentence.
fn title(d: Deployment) -> String {
    let name = d.as_str();
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// "distributed 2 worker(s) × 4 in flight; standalone 1 worker(s) × 8 in flight".
fn shapes<T>(figures: &[(Deployment, &T)], shape: impl Fn(&T) -> (usize, usize)) -> String {
    let each: Vec<String> = figures
        .iter()
        .map(|(d, f)| {
            let (workers, concurrency) = shape(f);
            format!("{} {workers} worker(s) × {concurrency} in flight", d.as_str())
        })
        .collect();
    each.join("; ")
}

pub fn efficiency(figures: &[(Deployment, &Efficiency)]) -> String {
    let Some((_, first)) = figures.first() else { return String::new() };
    let mut out = format!(
        "\n#### 1. Efficiency\n\nBackend: ollama-sim, {} slots × {} ms (capacity {} req/s), one \
         beside each deployment. Pipeline: {}.\n\n",
        first.slots,
        first.latency_ms,
        first.slots as u64 * 1000 / first.latency_ms.max(1),
        shapes(figures, |e| (e.workers, e.worker_concurrency))
    );
    let mut t =
        Table::new(&["deployment", "run", "requests", "time", "req/s", "pipeline ÷ direct"]);
    for (d, e) in figures {
        t.row([
            d.as_str(),
            &format!("direct client, {} in flight", e.slots),
            &int(e.direct.requests),
            &secs(e.direct.elapsed),
            &opt(e.direct.rate(), |r| format!("{r:.1}")),
            "",
        ]);
        let p = &e.pipeline;
        t.row([
            d.as_str(),
            "pipeline, create → completed",
            &int(p.total()),
            &opt(p.elapsed(), secs),
            &opt(p.rate(), |r| format!("{r:.1}")),
            &opt(e.ratio(), |r| format!("**{r:.3}**")),
        ]);
    }
    out.push_str(&t.markdown());
    out.push('\n');
    for (d, e) in figures {
        let p = &e.pipeline;
        let m = &p.moments;
        let _ = writeln!(
            out,
            "{} pipeline batch: in_progress after {}, first result {}, backend answered all {}, \
             all counted {}, completed {}; mean busy slots while running {} of {}; longest the \
             recorded count stood still {}.\n",
            title(*d),
            opt(m.in_progress, ms),
            opt(m.first_result, ms),
            opt(m.backend_done, ms),
            opt(m.all_counted, ms),
            opt(m.completed, ms),
            opt(m.mean_busy_slots(&p.samples), |b| format!("{b:.2}")),
            e.slots,
            ms(Moments::longest_count_stall(&p.samples))
        );
    }
    out
}

/// The stages of a batch: name, how it is measured, and the moments it spans.
type Stage = (&'static str, &'static str, Option<Duration>, Option<Duration>);

fn stages(m: &Moments) -> [Stage; 4] {
    [
        ("validate + record chunks", "create → in_progress", Some(Duration::ZERO), m.in_progress),
        ("worker dispatch", "in_progress → backend answered all", m.in_progress, m.backend_done),
        ("result collection (tail)", "backend done → all counted", m.backend_done, m.all_counted),
        ("finalize (output file)", "all counted → completed", m.all_counted, m.completed),
    ]
}

/// Time, share of the total and rate over a stage of `c`'s batch.
fn stage_cells(c: &Ceiling, from: Option<Duration>, to: Option<Duration>) -> [String; 3] {
    let run = &c.run;
    let d = to.zip(from).and_then(|(to, from)| to.checked_sub(from));
    let share =
        d.zip(run.elapsed()).map(|(d, total)| d.as_secs_f64() / total.as_secs_f64() * 100.0);
    let rate = d.and_then(|d| crate::stats::rate(run.total(), d));
    [opt(d, ms), opt(share, pct), opt(rate, |r| int(r as u64))]
}

pub fn ceiling(figures: &[(Deployment, &Ceiling)]) -> String {
    let Some((_, first)) = figures.first() else { return String::new() };
    let mut out = format!(
        "\n#### 2. Pipeline ceiling\n\n{} requests ({:.1} MB), ollama-sim at zero latency; {}. \
         Moments are when a poll every 20 ms first saw them.\n\n",
        int(first.run.total()),
        first.file_bytes as f64 / 1e6,
        shapes(figures, |c| (c.workers, c.worker_concurrency))
    );
    let mut header = vec!["stage".to_owned(), "measured as".to_owned()];
    for (d, _) in figures {
        header.extend([d.as_str().to_owned(), "share".into(), "req/s over the stage".into()]);
    }
    let mut t = Table::new(&header);
    let mut upload = vec!["upload (outside the rate)".to_owned(), "POST /v1/files".to_owned()];
    for (_, c) in figures {
        upload.extend([secs(c.run.upload), String::new(), String::new()]);
    }
    t.row(upload);
    for i in 0..4 {
        let (stage, how, _, _) = stages(&first.run.moments)[i];
        let mut row = vec![stage.to_owned(), how.to_owned()];
        for (_, c) in figures {
            let (_, _, from, to) = stages(&c.run.moments)[i];
            row.extend(stage_cells(c, from, to));
        }
        t.row(row);
    }
    let mut total = vec!["**total**".to_owned(), "create → completed".to_owned()];
    for (_, c) in figures {
        let [time, _, rate] = stage_cells(c, Some(Duration::ZERO), c.run.elapsed());
        total.extend([time, "100 %".to_owned(), rate]);
    }
    t.row(total);
    out.push_str(&t.markdown());
    for (d, c) in figures {
        out.push_str(&ceiling_detail(*d, c));
    }
    out
}

/// The gateway's own clock, the CPU table and the CPU per request of one deployment's batch.
fn ceiling_detail(d: Deployment, c: &Ceiling) -> String {
    let run = &c.run;
    let g = &c.gateway;
    let mut out = format!(
        "\n**{}.** The gateway's own clock (log `elapsed_ms`): validation {}, publishing the \
         chunks {} (overlaps dispatch), finalize {}. First result recorded {} after create; the \
         longest the recorded count stood still: {}.\n",
        title(d),
        opt(g.validated, ms),
        opt(g.published, ms),
        opt(g.ended, ms),
        opt(run.moments.first_result, ms),
        ms(Moments::longest_count_stall(&run.samples))
    );
    out.push_str(&cpu_table(d, &run.cpu));
    let ours: f64 = run.cpu.procs.iter().map(ProcUse::total).sum();
    if ours > 0.0 {
        let per_request = ours / run.total() as f64;
        let without_sim: f64 =
            run.cpu.procs.iter().filter(|p| p.name != "ollama-sim").map(ProcUse::total).sum();
        let _ = writeln!(
            out,
            "\nThe stack's own processes used {ours:.2} CPU-seconds, {:.0} µs per request \
             (without the simulator: {:.0} µs): on {} cores that bounds the pipeline at about \
             {} req/s however well the stages overlap.",
            per_request * 1e6,
            without_sim / run.total() as f64 * 1e6,
            run.cpu.cores,
            int((run.cpu.cores as f64 / per_request) as u64)
        );
    }
    out
}

/// CPU seconds by process over a batch, and the share of the machine's cores.
fn cpu_table(d: Deployment, cpu: &CpuUse) -> String {
    let capacity = cpu.wall.as_secs_f64() * cpu.cores as f64;
    let share = |s: f64| if capacity > 0.0 { pct(s / capacity * 100.0) } else { "n/a".into() };
    let mut out = format!(
        "\n{}: CPU from create to completed ({} over {} cores = {:.1} CPU-seconds):\n\n",
        title(d),
        secs(cpu.wall),
        cpu.cores,
        capacity
    );
    let mut t = Table::new(&["process", "CPU seconds", "of which kernel", "share of the machine"]);
    for p in &cpu.procs {
        let kernel = if p.total() > 0.0 { pct(p.system / p.total() * 100.0) } else { "n/a".into() };
        t.row([p.name.as_str(), &format!("{:.2}", p.total()), &kernel, &share(p.total())]);
    }
    t.row([
        "other: the bench, Postgres's own processes, other jobs",
        &format!("{:.2}", cpu.other),
        "",
        &share(cpu.other),
    ]);
    t.row(["stolen by the hypervisor", &format!("{:.2}", cpu.steal), "", &share(cpu.steal)]);
    out.push_str(&t.markdown());
    out
}

pub fn ingest(figures: &[(Deployment, &Ingest)]) -> String {
    let mut out = "\n#### 3. Ingest\n\nGateway with no workers (standalone: the one process, \
                   whose worker's backend does not answer during the figure); peak RSS is the \
                   kernel's VmHWM, reset before each phase.\n\n"
        .to_owned();
    let mut t = Table::new(&[
        "deployment",
        "file",
        "upload",
        "validate (create → in_progress)",
        "publish (gateway log)",
        "RSS before",
        "peak: upload",
        "peak: validate",
        "peak: publish",
    ]);
    for (d, i) in figures {
        for r in [&i.small, &i.large] {
            let mbs =
                |d: Duration| opt(crate::stats::mb_per_sec(r.bytes, d), |v| format!("{v:.1}"));
            t.row([
                d.as_str(),
                &format!("{} lines, {:.1} MB", int(r.lines), r.bytes as f64 / 1e6),
                &format!("{} ({} MB/s)", secs(r.upload), mbs(r.upload)),
                &format!("{} ({} MB/s)", secs(r.validate), mbs(r.validate)),
                &opt(r.gateway.published, secs),
                &format!("{:.1} MiB", r.before.rss_mib()),
                &format!("{:.1} MiB", r.upload_peak_mib),
                &format!("{:.1} MiB", r.validate_peak_mib),
                &format!("{:.1} MiB", r.publish_peak_mib),
            ]);
        }
    }
    out.push_str(&t.markdown());
    out
}

pub fn stability(figures: &[(Deployment, &Stability)]) -> String {
    let Some((_, first)) = figures.first() else { return String::new() };
    let mut out = format!(
        "\n#### 4. Stability\n\n{} back-to-back batches of {} requests, ollama-sim {} slots × {} \
         ms; {}. RSS in MiB after each batch.\n\n",
        first.runs.len(),
        int(first.runs.first().map_or(0, |r| r.total())),
        first.slots,
        first.latency_ms,
        shapes(figures, |s| (s.workers, s.worker_concurrency))
    );
    out.push_str(&stability_table(figures).markdown());
    out.push('\n');
    for (d, s) in figures {
        let stall = s
            .runs
            .iter()
            .map(|r| Moments::longest_count_stall(&r.samples))
            .max()
            .unwrap_or_default();
        let tails: Vec<String> = s
            .runs
            .iter()
            .map(|r| {
                let m = &r.moments;
                opt(m.completed.zip(m.backend_done), |(c, b)| ms(c.saturating_sub(b)))
            })
            .collect();
        let _ = writeln!(
            out,
            "{}: backend done → completed, per batch: {}. Longest the recorded count stood \
             still in any batch: {}.\n",
            title(*d),
            tails.join(", "),
            ms(stall)
        );
    }
    out
}

/// One row per batch, a column group per deployment (time, rate, each process's RSS), and the
/// drift of each column from the first batch to the last.
pub fn stability_table(figures: &[(Deployment, &Stability)]) -> Table {
    let mut header = vec!["batch".to_owned()];
    for (d, s) in figures {
        header.extend([format!("{}: create → completed", d.as_str()), "req/s".into()]);
        header.extend(s.services());
    }
    let mut t = Table::new(&header);
    let batches = figures.iter().map(|(_, s)| s.runs.len()).max().unwrap_or(0);
    for n in 0..batches {
        let mut row = vec![(n + 1).to_string()];
        for (_, s) in figures {
            let run = s.runs.get(n);
            row.push(opt(run.and_then(|r| r.elapsed()), secs));
            row.push(opt(run.and_then(|r| r.rate()), |r| format!("{r:.1}")));
            let memory = s.memory.get(n);
            row.extend(s.services().iter().map(|svc| {
                let m = memory.and_then(|m| m.iter().find(|(name, _)| name == svc));
                opt(m, |(_, m)| format!("{:.1}", m.rss_mib()))
            }));
        }
        t.row(row);
    }
    let mut drift = vec!["drift".to_owned()];
    for (_, s) in figures {
        drift.push(String::new());
        drift.push(format!("variance {}", opt(s.variance_pct(), pct)));
        drift.extend(
            s.services()
                .iter()
                .map(|svc| opt(crate::stats::drift_pct(&s.rss_of(svc)), |d| format!("{d:+.2} %"))),
        );
    }
    t.row(drift);
    t
}

pub fn real(figures: &[(Deployment, &RealEfficiency)]) -> String {
    let Some((_, first)) = figures.first() else { return String::new() };
    let mut out = format!(
        "\n#### 5. Real model\n\nBackend: llama.cpp's llama-server with Gemma 3 270M Q4_K_M on this \
         machine's CPU (`scripts/real-model.sh`), {} slots; every request a chat completion of at \
         most {} tokens, the same bodies from the direct client and in the batch. Pipeline: {}, \
         `NIGHTSHIFT_BACKEND=openai`.\n\n",
        first.slots,
        first.max_tokens,
        shapes(figures, |e| (e.workers, e.worker_concurrency))
    );
    let mut t =
        Table::new(&["deployment", "run", "requests", "time", "req/s", "pipeline ÷ direct"]);
    for (d, e) in figures {
        let direct = |label: &str, run: &crate::direct::DirectRun| {
            [
                d.as_str().to_owned(),
                format!("direct client {label}, {} in flight", e.slots),
                int(run.requests),
                secs(run.elapsed),
                opt(run.rate(), |r| format!("{r:.2}")),
                String::new(),
            ]
        };
        t.row(direct("before", &e.direct));
        let p = &e.pipeline;
        t.row([
            d.as_str(),
            "pipeline, create → completed",
            &int(p.total()),
            &opt(p.elapsed(), secs),
            &opt(p.rate(), |r| format!("{r:.2}")),
            &opt(e.ratio(), |r| format!("**{r:.3}** (of the two direct runs' rate)")),
        ]);
        t.row(direct("after", &e.direct_after));
    }
    out.push_str(&t.markdown());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::GatewayTimings;
    use crate::procs::Memory;
    use crate::scenarios::ingest::IngestRun;

    fn run(lines: u64, peak: f64) -> IngestRun {
        IngestRun {
            lines,
            bytes: lines * 1_000,
            upload: Duration::from_secs(1),
            validate: Duration::from_millis(500),
            gateway: GatewayTimings::default(),
            before: Memory { rss_kib: 10 * 1024, hwm_kib: 10 * 1024 },
            upload_peak_mib: peak,
            validate_peak_mib: peak,
            publish_peak_mib: peak,
        }
    }

    #[test]
    fn ingest_puts_each_deployments_files_in_rows_of_their_own() {
        let distributed = Ingest { small: run(100, 20.0), large: run(1_000, 40.0) };
        let standalone = Ingest { small: run(100, 30.0), large: run(1_000, 60.0) };
        let md = ingest(&[
            (Deployment::Distributed, &distributed),
            (Deployment::Standalone, &standalone),
        ]);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        // Header, rule, then two files per deployment.
        assert_eq!(rows.len(), 6, "{md}");
        assert!(rows[0].starts_with("| deployment | file | upload |"), "{md}");
        assert_eq!(
            rows[5],
            "| standalone | 1,000 lines, 1.0 MB | 1.00 s (1.0 MB/s) | 0.50 s (2.0 MB/s) | n/a | \
             10.0 MiB | 60.0 MiB | 60.0 MiB | 60.0 MiB |"
        );
    }

    /// Batches of 1,000 requests taking `secs` each, with each process's RSS (MiB) after each.
    fn stability(secs: &[u64], rss: &[(&str, &[f64])]) -> Stability {
        use crate::scenarios::BatchRun;
        let batch: nightshift_shared::openai::Batch = serde_json::from_value(serde_json::json!({
            "id": "batch_x", "object": "batch", "endpoint": "/v1/chat/completions",
            "input_file_id": "file_x", "completion_window": "24h", "status": "completed",
            "created_at": 0, "request_counts": {"total": 1000, "completed": 1000, "failed": 0},
            "usage": {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 0},
        }))
        .unwrap();
        let runs = secs
            .iter()
            .map(|&s| BatchRun {
                batch: batch.clone(),
                upload: Duration::ZERO,
                samples: Vec::new(),
                moments: Moments { completed: Some(Duration::from_secs(s)), ..Moments::default() },
                cpu: CpuUse::default(),
            })
            .collect();
        let memory = (0..secs.len())
            .map(|n| {
                let mib = |v: f64| Memory { rss_kib: (v * 1024.0) as u64, hwm_kib: 0 };
                rss.iter().map(|(name, values)| ((*name).to_owned(), mib(values[n]))).collect()
            })
            .collect();
        Stability {
            slots: 8,
            latency_ms: 20,
            workers: 1,
            worker_concurrency: 8,
            runs,
            memory,
            report_variance_pct: None,
        }
    }

    #[test]
    fn stability_puts_deployments_in_column_groups_with_their_own_processes() {
        let distributed = stability(
            &[4, 5],
            &[
                ("gateway", &[20.0, 22.0]),
                ("worker-1", &[10.0, 10.0]),
                ("nats-server", &[30.0, 33.0]),
            ],
        );
        let standalone = stability(&[2, 2], &[("nightshift", &[40.0, 40.4])]);
        let md = stability_table(&[
            (Deployment::Distributed, &distributed),
            (Deployment::Standalone, &standalone),
        ])
        .markdown();
        let rows: Vec<&str> = md.lines().collect();
        assert_eq!(
            rows[0],
            "| batch | distributed: create → completed | req/s | gateway | worker-1 | nats-server | \
             standalone: create → completed | req/s | nightshift |"
        );
        assert_eq!(rows[3], "| 2 | 5.00 s | 200.0 | 22.0 | 10.0 | 33.0 | 2.00 s | 500.0 | 40.4 |");
        assert_eq!(
            rows[4],
            "| drift |  | variance 20.00 % | +10.00 % | +0.00 % | +10.00 % |  | variance 0.00 % | \
             +1.00 % |"
        );
        assert_eq!(standalone.worst_drift_pct().map(|(n, _)| n), Some("nightshift".into()));
        assert_eq!(standalone.nats_drift_pct(), None);
    }

    #[test]
    fn deployment_names_start_sentences_and_shapes_name_each() {
        assert_eq!(title(Deployment::Standalone), "Standalone");
        let figures = [(Deployment::Distributed, &(2, 4)), (Deployment::Standalone, &(1, 8))];
        assert_eq!(
            shapes(&figures, |s| *s),
            "distributed 2 worker(s) × 4 in flight; standalone 1 worker(s) × 8 in flight"
        );
    }
}
