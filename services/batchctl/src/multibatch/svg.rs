//! Inline SVG charts for the HTML report, drawn in Rust so the page needs no network or script:
//! grouped or stacked bars, and a line over time with shaded spans.

use std::fmt::Write;

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One set of values, one per category; `None` leaves a gap.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
}

/// A horizontal dashed line across the plot, with its label.
pub struct Reference {
    pub value: f64,
    pub label: String,
    pub color: &'static str,
}

/// The drawing area: the whole chart, and the margins around the plot.
#[derive(Clone, Copy)]
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn new(w: f64, h: f64) -> Self {
        Self { w, h, left: 64.0, right: 20.0, top: 36.0, bottom: 44.0 }
    }
    fn plot_w(&self) -> f64 {
        self.w - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.h - self.top - self.bottom
    }
    /// The y coordinate of `v` on a scale from `lo` (bottom) to `hi` (top).
    fn y(&self, v: f64, lo: f64, hi: f64) -> f64 {
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.top + self.plot_h() * (1.0 - (v - lo) / span)
    }
}

/// A bar chart with one group of bars per category (side by side, or stacked).
pub struct Bars<'a> {
    pub class: &'a str,
    pub label: &'a str,
    pub categories: &'a [String],
    pub series: &'a [Series],
    pub stacked: bool,
    /// The values' unit, shown above the y axis.
    pub unit: &'a str,
    pub format: fn(f64) -> String,
    pub reference: Option<Reference>,
    pub width: f64,
    pub height: f64,
}

impl Bars<'_> {
    pub fn render(&self) -> String {
        let f = Frame::new(self.width, self.height);
        let n = self.categories.len().max(1);
        let top_value = (0..n)
            .map(|i| {
                let vals = self.series.iter().filter_map(|s| s.values.get(i).copied().flatten());
                if self.stacked { vals.sum() } else { vals.fold(0.0, f64::max) }
            })
            .fold(self.reference.as_ref().map_or(0.0, |r| r.value), f64::max);
        let ticks = nice_ticks(0.0, if top_value > 0.0 { top_value * 1.12 } else { 1.0 }, 5);
        let hi = ticks.last().copied().unwrap_or(1.0);
        let mut svg = open(self.class, self.label, &f);
        y_axis(&mut svg, &f, &ticks, 0.0, hi, self.format, self.unit);
        legend(&mut svg, &f, self.series);
        let band = f.plot_w() / n as f64;
        let groups = if self.stacked { 1 } else { self.series.len().max(1) };
        let bar_w = (band * 0.7 / groups as f64).min(90.0);
        let label_values = n * self.series.len() <= 24;
        for (i, category) in self.categories.iter().enumerate() {
            let x0 = f.left + band * i as f64 + (band - bar_w * groups as f64) / 2.0;
            let mut base = 0.0;
            for (j, s) in self.series.iter().enumerate() {
                let Some(v) = s.values.get(i).copied().flatten() else { continue };
                let x = if self.stacked { x0 } else { x0 + bar_w * j as f64 };
                let (y_top, y_bottom) = (f.y(base + v, 0.0, hi), f.y(base, 0.0, hi));
                let _ = write!(
                    svg,
                    r#"<rect class="bar" x="{x:.1}" y="{y_top:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}" rx="2"><title>{}: {} {}</title></rect>"#,
                    (y_bottom - y_top).max(0.0),
                    s.color,
                    esc(category),
                    esc(&s.name),
                    esc(&(self.format)(v)),
                );
                if label_values && !self.stacked {
                    text(
                        &mut svg,
                        x + bar_w / 2.0,
                        y_top - 5.0,
                        "middle",
                        "value",
                        &(self.format)(v),
                    );
                }
                if self.stacked {
                    base += v;
                }
            }
            if self.stacked && label_values && base > 0.0 {
                let y = f.y(base, 0.0, hi) - 5.0;
                text(&mut svg, x0 + bar_w / 2.0, y, "middle", "value", &(self.format)(base));
            }
            let x = f.left + band * (i as f64 + 0.5);
            text(&mut svg, x, f.h - f.bottom + 18.0, "middle", "tick", category);
        }
        if let Some(r) = &self.reference {
            reference(&mut svg, &f, f.y(r.value, 0.0, hi), r);
        }
        svg.push_str("</svg>");
        svg
    }
}

/// A span of the x axis to shade and name, such as one batch.
pub struct Span {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// A line over time (x in seconds from the start), with shaded spans and an optional limit.
pub struct Line<'a> {
    pub class: &'a str,
    pub label: &'a str,
    pub points: &'a [(f64, f64)],
    pub spans: &'a [Span],
    pub unit: &'a str,
    pub format: fn(f64) -> String,
    pub reference: Option<Reference>,
    pub width: f64,
    pub height: f64,
}

impl Line<'_> {
    pub fn render(&self) -> String {
        let f = Frame::new(self.width, self.height);
        let x_max = self
            .points
            .iter()
            .map(|p| p.0)
            .chain(self.spans.iter().map(|s| s.to))
            .fold(1.0, f64::max);
        let ys = self.points.iter().map(|p| p.1).chain(self.reference.as_ref().map(|r| r.value));
        let (lo, hi) =
            ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        // Small changes must stay visible: pad by a tenth of the range, and at least 0.25.
        let pad = ((hi - lo) * 0.1).max(0.25);
        let ticks = nice_ticks((lo - pad).max(0.0), hi + pad, 5);
        let (y_lo, y_hi) =
            (ticks.first().copied().unwrap_or(0.0), ticks.last().copied().unwrap_or(1.0));
        let x = |t: f64| f.left + f.plot_w() * t / x_max;
        let mut svg = open(self.class, self.label, &f);
        for (i, s) in self.spans.iter().enumerate() {
            let (x0, x1) = (x(s.from), x(s.to.max(s.from)));
            let _ = write!(
                svg,
                r#"<rect class="span" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                f.top,
                (x1 - x0).max(1.5),
                f.plot_h(),
                if i % 2 == 0 { "#dbe7fb" } else { "#e9e2fb" },
                esc(&s.label),
            );
            let _ = write!(
                svg,
                r##"<line class="boundary" x1="{x0:.1}" x2="{x0:.1}" y1="{:.1}" y2="{:.1}" stroke="#7a8699" stroke-dasharray="3 3"/>"##,
                f.top,
                f.top + f.plot_h()
            );
            text(&mut svg, (x0 + x1) / 2.0, f.top - 8.0, "middle", "span-label", &s.label);
        }
        y_axis(&mut svg, &f, &ticks, y_lo, y_hi, self.format, self.unit);
        for t in time_ticks(x_max, 8) {
            {
                text(&mut svg, x(t), f.h - f.bottom + 18.0, "middle", "tick", &clock(t));
            }
        }
        text(&mut svg, f.left + f.plot_w(), f.h - 6.0, "end", "axis-label", "time since start");
        if let Some(r) = &self.reference {
            reference(&mut svg, &f, f.y(r.value, y_lo, y_hi), r);
        }
        if !self.points.is_empty() {
            let mut d = String::new();
            for (i, (t, v)) in self.points.iter().enumerate() {
                let cmd = if i == 0 { 'M' } else { 'L' };
                let _ = write!(d, "{cmd}{:.1} {:.1} ", x(*t), f.y(*v, y_lo, y_hi));
            }
            let (first, last) = (self.points[0].0, self.points[self.points.len() - 1].0);
            let bottom = f.top + f.plot_h();
            let _ = write!(
                svg,
                r##"<path class="area" d="{d}L{:.1} {bottom:.1} L{:.1} {bottom:.1} Z" fill="#2f6fdf" fill-opacity="0.12" stroke="none"/>"##,
                x(last),
                x(first),
            );
            let _ = write!(
                svg,
                r##"<path class="line" d="{}" fill="none" stroke="#2f6fdf" stroke-width="2.2" stroke-linejoin="round"/>"##,
                d.trim_end()
            );
            if self.points.len() <= 150 {
                for (t, v) in self.points {
                    let _ = write!(
                        svg,
                        r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="2.6" fill="#2f6fdf"><title>{}: {}</title></circle>"##,
                        x(*t),
                        f.y(*v, y_lo, y_hi),
                        clock(*t),
                        esc(&(self.format)(*v)),
                    );
                }
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

fn open(class: &str, label: &str, f: &Frame) -> String {
    format!(
        r#"<svg class="chart {}" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(class),
        f.w,
        f.h,
        esc(label)
    )
}

fn text(svg: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = write!(
        svg,
        r#"<text class="{class}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
        esc(s)
    );
}

/// Grid lines and their labels, and the unit above the axis.
fn y_axis(
    svg: &mut String,
    f: &Frame,
    ticks: &[f64],
    lo: f64,
    hi: f64,
    fmt: fn(f64) -> String,
    unit: &str,
) {
    for &t in ticks {
        let y = f.y(t, lo, hi);
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e7ee"/>"##,
            f.left,
            f.left + f.plot_w()
        );
        text(svg, f.left - 8.0, y + 4.0, "end", "tick", &fmt(t));
    }
    let base = f.top + f.plot_h();
    let _ = write!(
        svg,
        r##"<line class="axis" x1="{:.1}" x2="{:.1}" y1="{base:.1}" y2="{base:.1}" stroke="#9aa5b5"/>"##,
        f.left,
        f.left + f.plot_w()
    );
    text(svg, f.left - 8.0, f.top - 14.0, "end", "axis-label", unit);
}

fn legend(svg: &mut String, f: &Frame, series: &[Series]) {
    if series.len() < 2 {
        return;
    }
    let mut x = f.w - f.right;
    for s in series.iter().rev() {
        let w = 22.0 + 7.5 * s.name.chars().count() as f64;
        x -= w;
        let _ = write!(
            svg,
            r#"<rect class="legend" x="{x:.1}" y="8" width="11" height="11" rx="2" fill="{}"/>"#,
            s.color
        );
        text(svg, x + 15.0, 18.0, "start", "legend-label", &s.name);
    }
}

fn reference(svg: &mut String, f: &Frame, y: f64, r: &Reference) {
    let _ = write!(
        svg,
        r#"<line class="reference" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
        f.left,
        f.left + f.plot_w(),
        r.color
    );
    let _ = write!(
        svg,
        r#"<text class="reference-label" x="{:.1}" y="{:.1}" text-anchor="end" fill="{}">{}</text>"#,
        f.left + f.plot_w() - 4.0,
        y - 6.0,
        r.color,
        esc(&r.label)
    );
}

/// About `count` round tick values covering `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = if hi > lo { hi - lo } else { 1.0 };
    let raw = span / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t < hi + step * 0.999 && ticks.len() < 50 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// About `count` ticks from 0 to `max` seconds, at steps a clock reads well.
pub fn time_ticks(max: f64, count: usize) -> Vec<f64> {
    const STEPS: [f64; 14] =
        [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0];
    let raw = max / count.max(1) as f64;
    let step = STEPS.iter().copied().find(|s| *s >= raw).unwrap_or((raw / 3600.0).ceil() * 3600.0);
    (0..).map(|i| i as f64 * step).take_while(|t| *t <= max + 1e-9).take(50).collect()
}

/// `45s`, `12:05`, `1:02:03` for seconds since the start.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}:{s:02}"),
        (h, m, s) => format!("{h}:{m:02}:{s:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(10.1, 10.9, 5);
        assert!(t[0] <= 10.1 && *t.last().unwrap() >= 10.9, "{t:?}");
    }

    #[test]
    fn time_ticks_fall_on_clock_steps() {
        assert_eq!(time_ticks(40.0, 8), [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0]);
        assert_eq!(time_ticks(7200.0, 8)[1], 900.0);
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(clock(125.0), "2:05");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn bars_draw_one_rect_per_value() {
        let categories = vec!["Batch 1".to_owned(), "Batch 2".to_owned()];
        let series =
            [Series { name: "req/s".into(), color: "#000", values: vec![Some(1.0), None] }];
        let svg = Bars {
            class: "c",
            label: "l",
            categories: &categories,
            series: &series,
            stacked: false,
            unit: "req/s",
            format: |v| format!("{v:.1}"),
            reference: None,
            width: 400.0,
            height: 200.0,
        }
        .render();
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
