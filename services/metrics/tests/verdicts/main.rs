//! The multi-batch report's verdicts on the real stack: gateway, two in-process workers, the
//! simulator and the metrics service, with batches run one after another. Each criterion of the
//! test plan is shown passing on a clean run and failing on the fault that should trip it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean;
mod errors;
mod helpers;
mod leak;
mod reloads;
mod throttle;
