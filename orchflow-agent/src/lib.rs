//! `orchflow-agent`: a Planner → Executor → Verifier LLM agent built on orchflow's own macros.
//!
//! An agent run is a flow like any other: typed, traced, checkpointed and resumable.
//!
//! * [`llm`]: one async trait for chat models ([`LlmClient`]) with clients for Ollama's native
//!   API and OpenAI-compatible servers, and [`Agent`] with `run` / `run_structured`.
//! * [`tools`]: one trait for tools ([`Tool`]): a sandboxed Python runner, Tavily web search and
//!   an offline BM25 search.
//! * [`solver`]: the planner → executor → verifier loop, written as `#[step]`s and one `flow!`.
//! * [`trajectory`]: every decision, tool call, verdict, token count and timing of a run.
//! * [`eval`]: scoring a JSONL benchmark; [`prm`]: process-reward data pieces.
//! * [`testing`]: a scripted LLM client for offline tests.

// The macros' expansions name `::orchflow`; this crate depends on `orchflow-core` alone.
extern crate orchflow_core as orchflow;

pub mod llm;
pub mod tools;
pub mod trajectory;

pub use agent::{Agent, AgentConfig, AgentError, AgentReply, Structured};
pub use eval::{EvalItem, EvalOptions, EvalReport, run_eval};
pub use llm::{
    ChatChunk, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, Message, OllamaClient,
    OpenAiClient, Role, Usage,
};
pub use solver::{Solver, SolverConfig};
pub use tools::{LocalSearch, PythonSandbox, TavilySearch, Tool, ToolError, ToolOutput};

pub mod agent;
pub mod eval;
pub mod offline;
pub mod prm;
pub mod solver;
pub mod testing;
