//! `orchflow-agent`: the Planner → Executor → Verifier LLM agent built on orchflow.
//!
//! Not built yet: this crate exists so that the workspace layout is final, and its tests check
//! that the macros work in a crate that depends on `orchflow-core` alone.
