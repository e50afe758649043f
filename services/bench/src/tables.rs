//! Markdown tables and the number formats the report uses.

use std::time::Duration;

/// A markdown table built row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        Self { header: header.iter().map(|s| s.as_ref().to_owned()).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are left empty, extra ones dropped.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(|c| cell(c.as_ref())).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_owned(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A cell's text with what would break the table escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `1234567` as `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn ms(d: Duration) -> String {
    format!("{} ms", int(d.as_millis() as u64))
}

pub fn pct(v: f64) -> String {
    format!("{v:.2} %")
}

/// `f(value)`, or `n/a`.
pub fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_as_markdown_with_escaped_cells() {
        let mut t = Table::new(&["a", "b"]);
        t.row(["1", "x|y"]);
        t.row(["2"]);
        assert_eq!(t.markdown(), "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n| 2 |  |\n");
    }

    #[test]
    fn numbers_format_for_reading() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_000), "1,000");
        assert_eq!(int(170_000), "170,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(secs(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(ms(Duration::from_millis(12_345)), "12,345 ms");
        assert_eq!(opt(None::<f64>, pct), "n/a");
        assert_eq!(opt(Some(4.5), pct), "4.50 %");
    }
}
