//! How the API's answers are computed: per-batch metrics ([`batch`]), the multi-batch stability
//! report ([`multi`]) and the VRAM figures both use ([`vram`]). Their shapes are wire contracts,
//! in [`nightshift_shared::reports`].

pub mod batch;
pub mod multi;
pub mod vram;
