//! The run's figures and their markdown: a summary table against the targets, then one
//! section per figure with what it is made of.

use crate::scenarios::ceiling::Ceiling;
use crate::scenarios::efficiency::Efficiency;
use crate::scenarios::ingest::Ingest;
use crate::scenarios::stability::Stability;
use crate::tables::{Table, int, ms, opt, pct, secs};
use std::fmt::Write;
use std::time::Duration;

/// Targets from the issue.
pub const EFFICIENCY_TARGET: f64 = 0.98;
pub const CEILING_TARGET_RPS: f64 = 10_000.0;
pub const INGEST_PEAK_TARGET_MIB: f64 = 100.0;
pub const VARIANCE_TARGET_PCT: f64 = 5.0;
pub const DRIFT_TARGET_PCT: f64 = 2.0;

/// A figure: not asked for, failed (why), or measured.
pub type Figure<T> = Option<Result<T, String>>;

#[derive(Debug, Default)]
pub struct Report {
    pub quick: bool,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages before and after the run.
    pub load_before: String,
    pub load_after: String,
    pub elapsed: Duration,
    pub efficiency: Figure<Efficiency>,
    pub ceiling: Figure<Ceiling>,
    pub ingest: Figure<Ingest>,
    pub stability: Figure<Stability>,
}

impl Report {
    /// Whether any figure asked for could not be measured.
    pub fn any_failed(&self) -> bool {
        [
            self.efficiency.as_ref().map(Result::is_err),
            self.ceiling.as_ref().map(Result::is_err),
            self.ingest.as_ref().map(Result::is_err),
            self.stability.as_ref().map(Result::is_err),
        ]
        .into_iter()
        .any(|f| f == Some(true))
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if self.quick {
            out.push_str("_Quick mode: small sizes, a smoke test; not figures to compare._\n\n");
        }
        let _ = writeln!(
            out,
            "Run took {}; load average (1/5/15 min) before {}, after {}.\n",
            secs(self.elapsed),
            self.load_before,
            self.load_after
        );
        out.push_str(&self.summary().markdown());
        if let Some(Ok(e)) = &self.efficiency {
            out.push_str(&efficiency_section(e));
        }
        if let Some(Ok(c)) = &self.ceiling {
            out.push_str(&ceiling_section(c));
        }
        if let Some(Ok(i)) = &self.ingest {
            out.push_str(&ingest_section(i));
        }
        if let Some(Ok(s)) = &self.stability {
            out.push_str(&stability_section(s));
        }
        out
    }

    fn summary(&self) -> Table {
        let mut t = Table::new(&["#", "figure", "measured", "target", "verdict"]);
        let failed = |t: &mut Table, n: &str, what: &str, e: &str| {
            t.row([n, what, &format!("not measured: {e}"), "", "error"]);
        };
        match &self.efficiency {
            Some(Ok(e)) => {
                let ratio = e.ratio();
                t.row([
                    "1",
                    "efficiency: pipeline ÷ direct client",
                    &format!(
                        "**{}** ({} vs {} req/s)",
                        opt(ratio, |r| format!("{r:.3}")),
                        opt(e.pipeline.rate(), |r| format!("{r:.1}")),
                        opt(e.direct.rate(), |r| format!("{r:.1}"))
                    ),
                    &format!("≥ {EFFICIENCY_TARGET}"),
                    verdict(ratio.map(|r| r >= EFFICIENCY_TARGET)),
                ]);
            }
            Some(Err(e)) => failed(&mut t, "1", "efficiency", e),
            None => {}
        }
        match &self.ceiling {
            Some(Ok(c)) => {
                let rate = c.run.rate();
                t.row([
                    "2",
                    "pipeline ceiling: create → completed",
                    &format!(
                        "**{} req/s** ({} requests in {})",
                        opt(rate, |r| int(r as u64)),
                        int(c.run.total()),
                        opt(c.run.elapsed(), secs)
                    ),
                    &format!("> {} req/s", int(CEILING_TARGET_RPS as u64)),
                    verdict(rate.map(|r| r > CEILING_TARGET_RPS)),
                ]);
            }
            Some(Err(e)) => failed(&mut t, "2", "pipeline ceiling", e),
            None => {}
        }
        match &self.ingest {
            Some(Ok(i)) => {
                let l = &i.large;
                t.row([
                    "3",
                    "ingest: upload / validate",
                    &format!(
                        "{} / {} MB/s ({:.0} MB, {} lines)",
                        opt(crate::stats::mb_per_sec(l.bytes, l.upload), |r| format!("{r:.1}")),
                        opt(crate::stats::mb_per_sec(l.bytes, l.validate), |r| format!("{r:.1}")),
                        l.bytes as f64 / 1e6,
                        int(l.lines)
                    ),
                    "",
                    "",
                ]);
                let peak = l.peak_mib();
                t.row([
                    "3",
                    "ingest: gateway peak RSS",
                    &format!(
                        "**{peak:.1} MiB** (a tenth of the file: {:.1} MiB)",
                        i.small.peak_mib()
                    ),
                    "< 100 MB, not growing with the file",
                    verdict(Some(peak < INGEST_PEAK_TARGET_MIB)),
                ]);
            }
            Some(Err(e)) => failed(&mut t, "3", "ingest", e),
            None => {}
        }
        match &self.stability {
            Some(Ok(s)) => {
                let v = s.variance_pct();
                t.row([
                    "4",
                    "stability: throughput variance",
                    &format!(
                        "**{}** (metrics service's report: {})",
                        opt(v, pct),
                        opt(s.report_variance_pct, pct)
                    ),
                    &format!("< {VARIANCE_TARGET_PCT} %"),
                    verdict(v.map(|v| v < VARIANCE_TARGET_PCT)),
                ]);
                let worst = s.worst_drift_pct();
                let signed = |d: f64| format!("{d:+.2} %");
                t.row([
                    "4",
                    &format!("stability: RSS drift, batch 1 → {}", s.runs.len()),
                    &format!(
                        "**{}** ({}, the largest of gateway, metrics, workers); nats-server {}",
                        opt(worst.as_ref().map(|w| w.1), signed),
                        opt(worst.as_ref().map(|w| w.0.clone()), |n| n),
                        opt(s.nats_drift_pct(), signed)
                    ),
                    &format!("within {DRIFT_TARGET_PCT} %"),
                    verdict(worst.map(|(_, d)| d.abs() <= DRIFT_TARGET_PCT)),
                ]);
            }
            Some(Err(e)) => failed(&mut t, "4", "stability", e),
            None => {}
        }
        t.row(["5", "standalone mode", "not measured: standalone mode does not exist yet", "", ""]);
        t
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "unknown",
    }
}

fn efficiency_section(e: &Efficiency) -> String {
    let mut out = format!(
        "\n#### 1. Efficiency\n\nBackend: ollama-sim, {} slots × {} ms (capacity {} req/s). \
         Pipeline: {} worker(s) × {} in flight.\n\n",
        e.slots,
        e.latency_ms,
        e.slots as u64 * 1000 / e.latency_ms.max(1),
        e.workers,
        e.worker_concurrency
    );
    let mut t = Table::new(&["run", "requests", "time", "req/s"]);
    t.row([
        &format!("direct client, {} in flight", e.slots),
        &int(e.direct.requests),
        &secs(e.direct.elapsed),
        &opt(e.direct.rate(), |r| format!("{r:.1}")),
    ]);
    let p = &e.pipeline;
    t.row([
        "pipeline, create → completed",
        &int(p.total()),
        &opt(p.elapsed(), secs),
        &opt(p.rate(), |r| format!("{r:.1}")),
    ]);
    out.push_str(&t.markdown());
    let m = &p.moments;
    let _ = writeln!(
        out,
        "\nPipeline batch: in_progress after {}, first result {}, backend answered all {}, all \
         counted {}, completed {}; mean busy slots while running {} of {}; longest the recorded \
         count stood still {}.",
        opt(m.in_progress, ms),
        opt(m.first_result, ms),
        opt(m.backend_done, ms),
        opt(m.all_counted, ms),
        opt(m.completed, ms),
        opt(m.mean_busy_slots(&p.samples), |b| format!("{b:.2}")),
        e.slots,
        ms(crate::timeline::Moments::longest_count_stall(&p.samples))
    );
    out
}

fn ceiling_section(c: &Ceiling) -> String {
    let run = &c.run;
    let m = &run.moments;
    let mut out = format!(
        "\n#### 2. Pipeline ceiling\n\n{} requests ({:.1} MB), ollama-sim at zero latency, {} \
         worker(s) × {} in flight. Moments are when a poll every 20 ms first saw them.\n\n",
        int(run.total()),
        c.file_bytes as f64 / 1e6,
        c.workers,
        c.worker_concurrency
    );
    let total = run.elapsed();
    let span = |a: Option<Duration>, b: Option<Duration>| b?.checked_sub(a?);
    let share = |d: Option<Duration>| {
        opt(d.zip(total).map(|(d, t)| d.as_secs_f64() / t.as_secs_f64() * 100.0), pct)
    };
    let per_sec = |d: Option<Duration>| {
        opt(d.and_then(|d| crate::stats::rate(run.total(), d)), |r| int(r as u64))
    };
    let mut t = Table::new(&["stage", "measured as", "time", "share", "req/s over the stage"]);
    t.row(["upload (outside the rate)", "POST /v1/files", &secs(run.upload), "", ""]);
    let stages = [
        ("validate + record chunks", "create → in_progress", Some(Duration::ZERO), m.in_progress),
        ("worker dispatch", "in_progress → backend answered all", m.in_progress, m.backend_done),
        ("result collection (tail)", "backend done → all counted", m.backend_done, m.all_counted),
        ("finalize (output file)", "all counted → completed", m.all_counted, m.completed),
    ];
    for (stage, how, from, to) in stages {
        let d = span(from, to);
        t.row([stage, how, &opt(d, ms), &share(d), &per_sec(d)]);
    }
    t.row(["**total**", "create → completed", &opt(total, ms), "100 %", &per_sec(total)]);
    out.push_str(&t.markdown());
    let g = &c.gateway;
    let _ = writeln!(
        out,
        "\nThe gateway's own clock (log `elapsed_ms`): validation {}, publishing the chunks {} \
         (overlaps dispatch), finalize {}. First result recorded {} after create; the longest \
         the recorded count stood still: {}.",
        opt(g.validated, ms),
        opt(g.published, ms),
        opt(g.ended, ms),
        opt(m.first_result, ms),
        ms(crate::timeline::Moments::longest_count_stall(&run.samples))
    );
    out.push_str(&cpu_table(&run.cpu));
    let ours: f64 = run.cpu.procs.iter().map(crate::cpu::ProcUse::total).sum();
    if ours > 0.0 {
        let per_request = ours / run.total() as f64;
        let _ = writeln!(
            out,
            "\nThe stack's own processes used {ours:.2} CPU-seconds, {:.0} µs per request \
             (without the simulator: {:.0} µs): on {} cores that bounds the pipeline at about \
             {} req/s however well the stages overlap.",
            per_request * 1e6,
            run.cpu
                .procs
                .iter()
                .filter(|p| p.name != "ollama-sim")
                .map(crate::cpu::ProcUse::total)
                .sum::<f64>()
                / run.total() as f64
                * 1e6,
            run.cpu.cores,
            int((run.cpu.cores as f64 / per_request) as u64)
        );
    }
    out
}

/// CPU seconds by process over a batch, and the share of the machine's cores.
fn cpu_table(cpu: &crate::cpu::CpuUse) -> String {
    let capacity = cpu.wall.as_secs_f64() * cpu.cores as f64;
    let share = |s: f64| if capacity > 0.0 { pct(s / capacity * 100.0) } else { "n/a".into() };
    let mut out = format!(
        "\nCPU from create to completed ({} over {} cores = {:.1} CPU-seconds):\n\n",
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

fn ingest_section(i: &Ingest) -> String {
    let mut out = "\n#### 3. Ingest\n\nGateway with no workers; peak RSS is the kernel's VmHWM, \
                   reset before each phase.\n\n"
        .to_owned();
    let mut t = Table::new(&[
        "file",
        "upload",
        "validate (create → in_progress)",
        "publish (gateway log)",
        "RSS before",
        "peak: upload",
        "peak: validate",
        "peak: publish",
    ]);
    for r in [&i.small, &i.large] {
        let mbs = |d: Duration| opt(crate::stats::mb_per_sec(r.bytes, d), |v| format!("{v:.1}"));
        t.row([
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
    out.push_str(&t.markdown());
    out
}

fn stability_section(s: &Stability) -> String {
    let mut out = format!(
        "\n#### 4. Stability\n\n{} back-to-back batches of {} requests, ollama-sim {} slots × {} \
         ms. RSS in MiB after each batch.\n\n",
        s.runs.len(),
        int(s.runs.first().map_or(0, |r| r.total())),
        s.slots,
        s.latency_ms
    );
    let services = s.services();
    let mut header = vec!["batch", "create → completed", "req/s"];
    header.extend(services.iter().map(String::as_str));
    let mut t = Table::new(&header);
    for (n, (run, memory)) in s.runs.iter().zip(&s.memory).enumerate() {
        let mut row = vec![
            (n + 1).to_string(),
            opt(run.elapsed(), secs),
            opt(run.rate(), |r| format!("{r:.1}")),
        ];
        row.extend(memory.iter().map(|(_, m)| format!("{:.1}", m.rss_mib())));
        t.row(row.iter().map(String::as_str));
    }
    let mut drift =
        vec!["drift".to_owned(), String::new(), format!("variance {}", opt(s.variance_pct(), pct))];
    drift.extend(
        services
            .iter()
            .map(|svc| opt(crate::stats::drift_pct(&s.rss_of(svc)), |d| format!("{d:+.2} %"))),
    );
    t.row(drift.iter().map(String::as_str));
    out.push_str(&t.markdown());
    let stall = s
        .runs
        .iter()
        .map(|r| crate::timeline::Moments::longest_count_stall(&r.samples))
        .max()
        .unwrap_or_default();
    let tails: Vec<String> = s
        .runs
        .iter()
        .map(|r| {
            opt(r.moments.completed.zip(r.moments.backend_done), |(c, b)| ms(c.saturating_sub(b)))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nBackend done → completed, per batch: {}. Longest the recorded count stood still in any \
         batch: {}.",
        tails.join(", "),
        ms(stall)
    );
    out
}
