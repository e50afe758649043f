//! The run's figures and their markdown: a summary table against the targets with one
//! column per deployment, then one section per figure ([`crate::sections`]) with what it is
//! made of, the deployments side by side.

use crate::config::Deployment;
use crate::scenarios::ceiling::Ceiling;
use crate::scenarios::efficiency::Efficiency;
use crate::scenarios::ingest::Ingest;
use crate::scenarios::real::RealEfficiency;
use crate::scenarios::stability::{NATS, Stability};
use crate::sections;
use crate::tables::{Table, int, opt, pct, secs};
use std::fmt::Write;
use std::time::Duration;

/// Targets from the issue.
pub const EFFICIENCY_TARGET: f64 = 0.98;
pub const CEILING_TARGET_RPS: f64 = 10_000.0;
pub const INGEST_PEAK_TARGET_MIB: f64 = 100.0;
pub const VARIANCE_TARGET_PCT: f64 = 5.0;
pub const DRIFT_TARGET_PCT: f64 = 2.0;

/// A figure on one deployment: measured, or failed (why).
pub type Figure<T> = Result<T, String>;

/// A figure on each deployment it was measured on, in the order they ran; empty when the
/// figure was not asked for.
pub type Measured<T> = Vec<(Deployment, Figure<T>)>;

/// The figure measured on `deployment`, if it was and did not fail.
pub fn on<T>(figures: &Measured<T>, deployment: Deployment) -> Option<&T> {
    figures.iter().find(|(d, _)| *d == deployment).and_then(|(_, f)| f.as_ref().ok())
}

fn failed<T>(figures: &Measured<T>) -> bool {
    figures.iter().any(|(_, f)| f.is_err())
}

/// The deployments a figure was measured on successfully, with what was measured.
pub fn measured<T>(figures: &Measured<T>) -> Vec<(Deployment, &T)> {
    figures.iter().filter_map(|(d, f)| Some((*d, f.as_ref().ok()?))).collect()
}

#[derive(Debug, Default)]
pub struct Report {
    pub quick: bool,
    /// The deployments asked for, in the order of the summary's columns.
    pub deployments: Vec<Deployment>,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages before and after the run.
    pub load_before: String,
    pub load_after: String,
    pub elapsed: Duration,
    pub efficiency: Measured<Efficiency>,
    pub ceiling: Measured<Ceiling>,
    pub ingest: Measured<Ingest>,
    pub stability: Measured<Stability>,
    pub real: Measured<RealEfficiency>,
}

impl Report {
    /// Whether any figure asked for could not be measured.
    pub fn any_failed(&self) -> bool {
        failed(&self.efficiency)
            || failed(&self.ceiling)
            || failed(&self.ingest)
            || failed(&self.stability)
            || failed(&self.real)
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
        let efficiency = measured(&self.efficiency);
        if !efficiency.is_empty() {
            out.push_str(&sections::efficiency(&efficiency));
        }
        let ceiling = measured(&self.ceiling);
        if !ceiling.is_empty() {
            out.push_str(&sections::ceiling(&ceiling));
        }
        let ingest = measured(&self.ingest);
        if !ingest.is_empty() {
            out.push_str(&sections::ingest(&ingest));
        }
        let stability = measured(&self.stability);
        if !stability.is_empty() {
            out.push_str(&sections::stability(&stability));
        }
        let real = measured(&self.real);
        if !real.is_empty() {
            out.push_str(&sections::real(&real));
        }
        out
    }

    fn summary(&self) -> Table {
        let mut t = Table::new(&summary_header(&self.deployments));
        let d = &self.deployments;
        summary_row(d, "1", "efficiency: pipeline ÷ direct client", &self.efficiency, |e| {
            let ratio = e.ratio();
            let cell = format!(
                "**{}** ({} vs {} req/s)",
                opt(ratio, |r| format!("{r:.3}")),
                opt(e.pipeline.rate(), |r| format!("{r:.1}")),
                opt(e.direct.rate(), |r| format!("{r:.1}"))
            );
            (cell, ratio.map(|r| r >= EFFICIENCY_TARGET))
        })
        .target(&mut t, &format!("≥ {EFFICIENCY_TARGET}"));
        summary_row(d, "2", "pipeline ceiling: create → completed", &self.ceiling, |c| {
            let rate = c.run.rate();
            let cell = format!(
                "**{} req/s** ({} requests in {})",
                opt(rate, |r| int(r as u64)),
                int(c.run.total()),
                opt(c.run.elapsed(), secs)
            );
            (cell, rate.map(|r| r > CEILING_TARGET_RPS))
        })
        .target(&mut t, &format!("> {} req/s", int(CEILING_TARGET_RPS as u64)));
        summary_row(d, "3", "ingest: upload / validate", &self.ingest, |i| {
            let l = &i.large;
            let cell = format!(
                "{} / {} MB/s ({:.0} MB, {} lines)",
                opt(crate::stats::mb_per_sec(l.bytes, l.upload), |r| format!("{r:.1}")),
                opt(crate::stats::mb_per_sec(l.bytes, l.validate), |r| format!("{r:.1}")),
                l.bytes as f64 / 1e6,
                int(l.lines)
            );
            (cell, None)
        })
        .target(&mut t, "");
        summary_row(
            d,
            "3",
            "ingest: gateway peak RSS (standalone: the one process)",
            &self.ingest,
            |i| {
                let peak = i.large.peak_mib();
                let cell = format!(
                    "**{peak:.1} MiB** (a tenth of the file: {:.1} MiB)",
                    i.small.peak_mib()
                );
                (cell, Some(peak < INGEST_PEAK_TARGET_MIB))
            },
        )
        .target(&mut t, "< 100 MB, not growing with the file");
        summary_row(d, "4", "stability: throughput variance", &self.stability, |s| {
            let v = s.variance_pct();
            let cell = format!(
                "**{}** (metrics service's report: {})",
                opt(v, pct),
                opt(s.report_variance_pct, pct)
            );
            (cell, v.map(|v| v < VARIANCE_TARGET_PCT))
        })
        .target(&mut t, &format!("< {VARIANCE_TARGET_PCT} %"));
        let batches =
            self.stability.iter().find_map(|(_, s)| s.as_ref().ok()).map(|s| s.runs.len());
        summary_row(
            d,
            "4",
            &format!("stability: RSS drift, batch 1 → {}", opt(batches, |n| n.to_string())),
            &self.stability,
            |s| (drift_cell(s), s.worst_drift_pct().map(|(_, d)| d.abs() <= DRIFT_TARGET_PCT)),
        )
        .target(&mut t, &format!("within {DRIFT_TARGET_PCT} %"));
        summary_row(d, "5", "real model: pipeline ÷ direct client", &self.real, |e| {
            let ratio = e.ratio();
            let cell = format!(
                "**{}** ({} vs {} req/s)",
                opt(ratio, |r| format!("{r:.3}")),
                opt(e.pipeline.rate(), |r| format!("{r:.2}")),
                opt(e.direct_rate(), |r| format!("{r:.2}"))
            );
            (cell, ratio.map(|r| r >= EFFICIENCY_TARGET))
        })
        .target(&mut t, &format!("≥ {EFFICIENCY_TARGET}"));
        t
    }
}

/// The summary's columns: one "measured" column per deployment.
pub fn summary_header(deployments: &[Deployment]) -> Vec<String> {
    let mut header = vec!["#".to_owned(), "figure".to_owned()];
    header.extend(deployments.iter().map(|d| d.as_str().to_owned()));
    header.push("target".to_owned());
    header.push(if deployments.len() > 1 {
        let names: Vec<&str> = deployments.iter().map(|d| d.as_str()).collect();
        format!("verdict ({})", names.join(" / "))
    } else {
        "verdict".to_owned()
    });
    header
}

/// A summary row in the making: its cells up to the target, and a verdict per deployment.
struct PendingRow {
    cells: Vec<String>,
    verdicts: Vec<&'static str>,
}

impl PendingRow {
    /// Adds the row with `target`; a row with no target gets no verdict.
    fn target(self, t: &mut Table, target: &str) {
        if self.cells.is_empty() {
            return;
        }
        let mut cells = self.cells;
        cells.push(target.to_owned());
        cells.push(if target.is_empty() { String::new() } else { self.verdicts.join(" / ") });
        t.row(cells);
    }
}

/// One figure's cell and verdict (met or not, `None` when unknown) on each deployment; no row
/// (an empty [`PendingRow`]) when the figure was not asked for.
fn summary_row<T>(
    deployments: &[Deployment],
    n: &str,
    what: &str,
    figures: &Measured<T>,
    cell: impl Fn(&T) -> (String, Option<bool>),
) -> PendingRow {
    if figures.is_empty() {
        return PendingRow { cells: Vec::new(), verdicts: Vec::new() };
    }
    let mut cells = vec![n.to_owned(), what.to_owned()];
    let mut verdicts = Vec::new();
    for d in deployments {
        match figures.iter().find(|(f, _)| f == d).map(|(_, f)| f) {
            Some(Ok(figure)) => {
                let (text, met) = cell(figure);
                cells.push(text);
                verdicts.push(verdict(met));
            }
            Some(Err(e)) => {
                cells.push(format!("not measured: {e}"));
                verdicts.push("error");
            }
            None => {
                cells.push(String::new());
                verdicts.push("");
            }
        }
    }
    PendingRow { cells, verdicts }
}

/// The largest RSS drift of the product's processes, which one, and nats-server's beside it.
fn drift_cell(s: &Stability) -> String {
    let worst = s.worst_drift_pct();
    let signed = |d: f64| format!("{d:+.2} %");
    let ours: Vec<String> = s.services().into_iter().filter(|n| n != NATS).collect();
    let which = match worst.as_ref() {
        Some((name, _)) if ours.len() == 1 => format!("{name}, the one process"),
        Some((name, _)) => format!("{name}, the largest of {}", ours.join(", ")),
        None => "n/a".to_owned(),
    };
    let mut cell = format!("**{}** ({which})", opt(worst.as_ref().map(|w| w.1), signed));
    if let Some(nats) = s.nats_drift_pct() {
        let _ = write!(cell, "; nats-server {}", signed(nats));
    }
    cell
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Deployment::*;

    #[test]
    fn the_summary_has_a_column_per_deployment_and_a_verdict_for_each() {
        assert_eq!(
            summary_header(&[Distributed, Standalone]),
            [
                "#",
                "figure",
                "distributed",
                "standalone",
                "target",
                "verdict (distributed / standalone)"
            ]
        );
        assert_eq!(
            summary_header(&[Standalone]),
            ["#", "figure", "standalone", "target", "verdict"]
        );
    }

    #[test]
    fn a_failed_figure_is_reported_per_deployment_and_one_not_asked_for_is_left_out() {
        let report = Report {
            deployments: vec![Distributed, Standalone],
            efficiency: vec![
                (Distributed, Err("no Postgres".into())),
                (Standalone, Err("no binary".into())),
            ],
            ..Report::default()
        };
        assert!(report.any_failed());
        let md = report.markdown();
        assert!(
            md.contains(
                "| 1 | efficiency: pipeline ÷ direct client | not measured: no Postgres | not \
                 measured: no binary | ≥ 0.98 | error / error |"
            ),
            "{md}"
        );
        assert!(!md.contains("| 2 |") && !md.contains("#### 1."), "{md}");
        assert!(!Report::default().any_failed());
    }
}
