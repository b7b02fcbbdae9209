#![doc = include_str!("../README.md")]

pub use orchflow_core::*;

/// Helpers for offline tests: flaky steps, event collection, scripted human input
/// ([`orchflow_core::testing`]) and, with the `agent` feature, the scripted LLM client
/// (`ScriptedLlm`).
pub mod testing {
    #[cfg(feature = "agent")]
    pub use orchflow_agent::testing::*;
    pub use orchflow_core::testing::*;
}

/// The Planner → Executor → Verifier agent: LLM clients, tools, the solver, eval (the `agent`
/// feature).
#[cfg(feature = "agent")]
pub use orchflow_agent as agent;
