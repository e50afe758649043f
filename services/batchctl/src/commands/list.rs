//! `batchctl list`: recent batches as a table, newest first.

use crate::{Client, Outcome, format};
use nightshift_shared::openai::Batch;

/// Page size of `--all` when no `--limit` is given: the gateway's largest.
const ALL_PAGE: u32 = 100;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Batches per page (the gateway allows 1 to 100; it shows 20 when left out).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Follow every page, not just the first.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(client: &Client, args: &ListArgs) -> anyhow::Result<Outcome> {
    let mut batches = Vec::new();
    let mut after: Option<String> = None;
    let limit = if args.all { Some(args.limit.unwrap_or(ALL_PAGE)) } else { args.limit };
    loop {
        let page = client.list_batches(limit, after.as_deref()).await?;
        batches.extend(page.data);
        match page.last_id {
            Some(last) if args.all && page.has_more => after = Some(last),
            _ => break,
        }
    }
    print!("{}", table(&batches));
    Ok(Outcome::Success)
}

/// Columns padded to their widest cell.
pub fn table(batches: &[Batch]) -> String {
    let header =
        ["ID", "STATUS", "COMPLETED", "FAILED", "TOTAL", "CREATED (UTC)"].map(String::from);
    let rows: Vec<[String; 6]> = batches
        .iter()
        .map(|b| {
            let c = &b.request_counts;
            [
                b.id.clone(),
                b.status.as_str().to_owned(),
                c.completed.to_string(),
                c.failed.to_string(),
                c.total.to_string(),
                format::utc(b.created_at),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> =
            row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
