//! Shared flows for the benchmarks (see `benches/`).
