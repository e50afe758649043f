//! The answers of the API: per-batch metrics ([`batch`]), the multi-batch stability report
//! ([`multi`]) and the VRAM figures both use ([`vram`]).

pub mod batch;
pub mod multi;
pub mod vram;
