//! The multi-batch stability test behind `batchctl multi-batch`: what it records and how it
//! shows it.
//!
//! - [`results`]: the results file, `multi_batch_results_<stamp>.json`.
//! - [`view`]: reading the metrics service's JSON (types in `nightshift_shared::reports`).
//! - [`summary`]: the FINAL MULTI-BATCH SUMMARY printed at the end.
//! - [`html`] and [`svg`]: the self-contained HTML report with its charts.
//! - [`vram`]: total VRAM from the metrics service, once or sampled over the run.
//! - [`interrupt`]: Ctrl-C handling.

pub mod html;
pub mod interrupt;
pub mod results;
pub mod summary;
pub mod svg;
pub mod view;
pub mod vram;
