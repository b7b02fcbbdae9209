//! The solver: `planner` → `executor` → `verifier`, looped, written as `#[step]`s and one
//! `flow!`.
//!
//! ```text
//! loop(max = 32) { planner => executor => verifier } until finished => finalize
//! ```
//!
//! * **planner**: the only model-driven decision. It asks the model for a [`Decision`]
//!   (`{thought, action, action_input}`, action ∈ think | search | code | answer), with the
//!   decision's JSON schema as the reply format. An unparsable reply is retried once; a second
//!   one is recorded as [`PlannerOutput::Malformed`]: the step does nothing but tell the model
//!   next time, and counts against the budget.
//! * **executor**: pure dispatch, no model: `search` and `code` call the tool of that name,
//!   `answer` ends the run, `think` only records the thought. A tool error is recorded in
//!   memory; it never fails the run.
//! * **verifier**: asks the model whether memory suffices to answer. An unparsable verdict
//!   means "continue".
//! * **finalize**: the answer: the planner's, or composed from memory when the verifier said it
//!   suffices, or — when the step budget ran out — a fallback answer (the model's best answer
//!   from memory, else the last tool output, else a fixed text).
//!
//! A budget of zero ([`SolverConfig::max_steps`] `= 0`) makes no model call at all: the steps
//! pass the empty memory through and the run ends with [`Outcome::BudgetExhausted`] and the
//! configured fallback answer.
//!
//! Memory is the loop's value: the [`Trajectory`] so far. A durable run
//! ([`Solver::solve_durable`]) saves it after every step of every iteration, so
//! [`Solver::resume`] finishes an interrupted run without repeating a finished tool call.

use crate::agent::{Agent, AgentConfig, AgentError};
use crate::llm::LlmClient;
use crate::tools::{Tool, ToolError};
use crate::trajectory::{
    Action, Decision, Outcome, PlannerOutput, ToolCall, Trajectory, TrajectoryStep, Verdict,
};
use orchflow::{CheckpointStore, RunId, StepContext, flow, step};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The most steps a solver run can take, whatever [`SolverConfig::max_steps`] says: the loop's
/// bound in the flow.
pub const MAX_STEPS_CAP: u32 = 64;

/// How a solver runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverConfig {
    /// The step budget (planner → executor → verifier rounds), at most [`MAX_STEPS_CAP`].
    ///
    /// `0` means no model call at all: the run ends at once with
    /// [`Outcome::BudgetExhausted`], no steps and [`fallback_answer`](Self::fallback_answer).
    pub max_steps: u32,
    /// The model and its options (the planner's and the verifier's).
    pub model: AgentConfig,
    /// The most characters of a tool's output kept in memory (the rest is cut, and marked so).
    pub max_tool_output: usize,
    /// The answer when the budget runs out and nothing better can be found.
    pub fallback_answer: String,
}

impl Default for SolverConfig {
    fn default() -> Self {
        SolverConfig {
            max_steps: 8,
            model: AgentConfig::default(),
            max_tool_output: 2_000,
            fallback_answer: "No answer could be found.".to_string(),
        }
    }
}

/// What a solver's steps share: the model, the tools, the configuration. The run's typed state
/// (`StepContext<SolverEnv>`).
pub struct SolverEnv {
    planner: Agent,
    verifier: Agent,
    tools: Vec<Arc<dyn Tool>>,
    config: SolverConfig,
    /// The memory after the last finished step, so that a run that fails still returns what it
    /// did.
    last: std::sync::Mutex<Option<Trajectory>>,
}

impl SolverEnv {
    fn remember(&self, memory: &Trajectory) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(memory.clone());
        }
    }

    fn last(&self) -> Option<Trajectory> {
        self.last.lock().ok().and_then(|mut l| l.take())
    }

    fn tool(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }
}

/// Why a solver step failed (the model could not be reached, after its retries). A failed run
/// still returns a trajectory, with [`Outcome::Failed`] and the fallback answer.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// The model call failed.
    #[error("{role}: {source}")]
    Model {
        /// `planner`, `verifier` or `finalize`.
        role: &'static str,
        /// Why.
        #[source]
        source: AgentError,
    },
}

/// The verifier's reply format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerdictReply {
    /// Whether the memory suffices to answer the question (`"yes"`/`"no"` strings are read too).
    #[serde(deserialize_with = "crate::trajectory::lenient::yes_no")]
    pub sufficient: bool,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// The reply format when composing the final answer from memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FinalAnswer {
    /// The answer, as short as the question allows.
    #[serde(deserialize_with = "crate::trajectory::lenient::text")]
    pub answer: String,
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The first `max` characters of `s`, marked when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!(
            "{}… [{} more characters]",
            &s[..at],
            s[at..].chars().count()
        ),
    }
}

/// Memory as the model reads it: every step's decision, tool result and verdict.
pub fn render_memory(memory: &Trajectory, max_tool_output: usize) -> String {
    let mut out = String::new();
    for s in &memory.steps {
        out.push_str(&format!("Step {}:\n", s.index + 1));
        match &s.decision {
            PlannerOutput::Decision(d) => {
                out.push_str(&format!("  thought: {}\n", d.thought));
                out.push_str(&format!("  action: {}\n", d.action.as_str()));
                out.push_str(&format!("  action_input: {}\n", d.action_input));
            }
            PlannerOutput::Malformed { error, .. } => {
                out.push_str(&format!(
                    "  (your reply was not a valid decision: {error}; reply with the JSON object only)\n"
                ));
            }
        }
        if let Some(call) = &s.tool_call {
            match &call.result {
                // Continuation lines are indented under `result:`.
                Ok(o) => out.push_str(&format!(
                    "  result: {}\n",
                    shorten(o.content.trim_end(), max_tool_output).replace('\n', "\n    ")
                )),
                Err(e) => out.push_str(&format!("  tool error ({}): {e}\n", e.kind())),
            }
        }
        if let Some(v) = &s.verdict {
            out.push_str(&format!(
                "  verifier: {} ({})\n",
                if v.sufficient {
                    "sufficient"
                } else {
                    "not yet"
                },
                v.reason
            ));
        }
    }
    out
}

/// The planner's instructions: the actions and the tools.
fn planner_system(tools: &[Arc<dyn Tool>]) -> String {
    let mut s = String::from(
        "You solve the user's question step by step. At each step choose ONE action and reply \
         with a JSON object {\"thought\": string, \"action\": one of \"think\", \"search\", \
         \"code\", \"answer\", \"action_input\": string}.\n\
         - think: reason; action_input is your reasoning.\n\
         - answer: give the final answer; action_input is the answer only (for a number, the \
         number; for a multiple-choice question, the letter).\n",
    );
    for t in tools {
        s.push_str(&format!("- {}: {}\n", t.name(), t.description()));
    }
    s
}

/// The planner's question for one step.
fn planner_prompt(memory: &Trajectory, env: &SolverEnv) -> String {
    let steps_left = env.config.max_steps.saturating_sub(step_count(memory));
    format!(
        "Question: {}\n\nMemory so far:\n{}\nSteps left: {}\nDecide the next action.",
        memory.question,
        match render_memory(memory, env.config.max_tool_output) {
            m if m.is_empty() => "(nothing yet)\n".to_string(),
            m => m,
        },
        steps_left
    )
}

fn step_count(memory: &Trajectory) -> u32 {
    u32::try_from(memory.steps.len()).unwrap_or(u32::MAX)
}

/// The step budget in effect: [`SolverConfig::max_steps`], at most [`MAX_STEPS_CAP`].
fn budget(config: &SolverConfig) -> u32 {
    config.max_steps.min(MAX_STEPS_CAP)
}

/// Plans one step: asks the model for a [`Decision`] and appends the step to memory.
///
/// With a budget of zero it asks nothing and passes the empty memory through.
#[step(retry = 1, delay = "200ms")]
pub async fn planner(
    mut memory: Trajectory,
    ctx: &StepContext<SolverEnv>,
) -> Result<Trajectory, SolverError> {
    let env = ctx.state();
    if budget(&env.config) == 0 && memory.steps.is_empty() {
        return Ok(memory);
    }
    let started = Instant::now();
    let prompt = planner_prompt(&memory, env);
    let (decision, usage) = match env.planner.run_structured::<Decision>(&prompt).await {
        Ok(s) => (PlannerOutput::Decision(s.value), s.usage),
        Err(
            AgentError::NotJson {
                raw, error, usage, ..
            }
            | AgentError::WrongShape {
                raw, error, usage, ..
            },
        ) => (
            PlannerOutput::Malformed {
                raw: shorten(&raw, 2_000),
                error,
            },
            usage,
        ),
        Err(source) => {
            return Err(SolverError::Model {
                role: "planner",
                source,
            });
        }
    };
    memory.usage += usage;
    memory.steps.push(TrajectoryStep {
        index: step_count(&memory),
        decision,
        tool_call: None,
        verdict: None,
        usage,
        planner_ms: millis(started),
        executor_ms: 0,
        verifier_ms: 0,
    });
    env.remember(&memory);
    Ok(memory)
}

/// Carries out the last decision: pure dispatch to a tool, no model. Tool errors are recorded,
/// never raised.
#[step]
pub async fn executor(mut memory: Trajectory, ctx: &StepContext<SolverEnv>) -> Trajectory {
    let env = ctx.state();
    let started = Instant::now();
    let Some(step) = memory.steps.last_mut() else {
        return memory;
    };
    let Some(decision) = step.decision.decision().cloned() else {
        return memory;
    };
    match decision.action {
        Action::Think => {}
        Action::Answer => {
            memory.answer = Some(decision.action_input.trim().to_string());
            memory.outcome = Outcome::Answered;
        }
        Action::Search | Action::Code => {
            let name = decision.action.as_str();
            let input = match decision.action {
                Action::Search => serde_json::json!({ "query": decision.action_input }),
                _ => serde_json::json!({ "code": decision.action_input }),
            };
            let call_started = Instant::now();
            let result = match env.tool(name) {
                Some(tool) => tool.call(&input).await,
                None => Err(ToolError::UnknownTool {
                    tool: name.to_string(),
                }),
            };
            step.tool_call = Some(ToolCall {
                tool: name.to_string(),
                input,
                result,
                duration_ms: millis(call_started),
            });
        }
    }
    step.executor_ms = millis(started);
    env.remember(&memory);
    memory
}

/// Judges whether memory suffices to answer; an unparsable verdict means "continue". Skipped
/// once the planner has answered, and when memory is empty (a budget of zero).
#[step(retry = 1, delay = "200ms")]
pub async fn verifier(
    mut memory: Trajectory,
    ctx: &StepContext<SolverEnv>,
) -> Result<Trajectory, SolverError> {
    if memory.answer.is_some() || memory.steps.is_empty() {
        return Ok(memory);
    }
    let env = ctx.state();
    let started = Instant::now();
    let prompt = format!(
        "Question: {}\n\nMemory so far:\n{}\nDoes this memory contain enough to answer the \
         question with confidence? Reply with a JSON object {{\"sufficient\": bool, \"reason\": \
         string}}.",
        memory.question,
        render_memory(&memory, env.config.max_tool_output)
    );
    let (verdict, usage) = match env.verifier.run_structured::<VerdictReply>(&prompt).await {
        Ok(s) => (
            Verdict {
                sufficient: s.value.sufficient,
                reason: s.value.reason,
                parsed: true,
                raw: None,
            },
            s.usage,
        ),
        Err(
            AgentError::NotJson {
                raw, error, usage, ..
            }
            | AgentError::WrongShape {
                raw, error, usage, ..
            },
        ) => (
            Verdict {
                sufficient: false,
                reason: format!("unparsable verdict, continuing: {error}"),
                parsed: false,
                raw: Some(shorten(&raw, 2_000)),
            },
            usage,
        ),
        Err(source) => {
            return Err(SolverError::Model {
                role: "verifier",
                source,
            });
        }
    };
    memory.usage += usage;
    if let Some(step) = memory.steps.last_mut() {
        step.usage += usage;
        step.verifier_ms = millis(started);
        step.verdict = Some(verdict);
    }
    env.remember(&memory);
    Ok(memory)
}

/// Whether the loop is done: an answer, a sufficient verdict, or the budget spent.
pub fn finished(memory: &Trajectory, ctx: &StepContext<SolverEnv>) -> bool {
    memory.answer.is_some()
        || memory
            .steps
            .last()
            .and_then(|s| s.verdict.as_ref())
            .is_some_and(|v| v.sufficient)
        || step_count(memory) >= budget(&ctx.state().config)
}

/// The most characters of a tool's output used as a fallback answer.
const FALLBACK_OUTPUT_CHARS: usize = 500;

/// The last successful tool output in memory (shortened), if any.
fn last_tool_output(memory: &Trajectory) -> Option<String> {
    memory
        .steps
        .iter()
        .rev()
        .filter_map(|s| s.tool_call.as_ref())
        .find_map(|c| c.result.as_ref().ok())
        .map(|o| shorten(o.content.trim(), FALLBACK_OUTPUT_CHARS))
        .filter(|s| !s.is_empty())
}

/// Ends the run: the planner's answer, or one composed from memory (verified), or the fallback.
///
/// With nothing in memory (a budget of zero) the model is not asked: the fallback answer, with
/// [`Outcome::BudgetExhausted`].
#[step]
pub async fn finalize(mut memory: Trajectory, ctx: &StepContext<SolverEnv>) -> Trajectory {
    if memory.answer.is_some() {
        memory.outcome = Outcome::Answered;
        return memory;
    }
    let env = ctx.state();
    if memory.steps.is_empty() {
        memory.outcome = Outcome::BudgetExhausted;
        memory.answer = Some(env.config.fallback_answer.clone());
        return memory;
    }
    let verified = memory
        .steps
        .last()
        .and_then(|s| s.verdict.as_ref())
        .is_some_and(|v| v.sufficient);
    let prompt = format!(
        "Question: {}\n\nMemory:\n{}\nGive the final answer only (for a number, the number; for \
         a multiple-choice question, the letter) as a JSON object {{\"answer\": string}}.",
        memory.question,
        render_memory(&memory, env.config.max_tool_output)
    );
    let composed = env.verifier.run_structured::<FinalAnswer>(&prompt).await;
    let answer = match composed {
        Ok(s) => {
            memory.usage += s.usage;
            Some(s.value.answer.trim().to_string()).filter(|a| !a.is_empty())
        }
        Err(e) => {
            tracing::warn!(error = %e, "no final answer from the model; falling back");
            None
        }
    };
    memory.outcome = if verified {
        Outcome::Verified
    } else {
        Outcome::BudgetExhausted
    };
    memory.answer = Some(
        answer
            .or_else(|| last_tool_output(&memory))
            .unwrap_or_else(|| env.config.fallback_answer.clone()),
    );
    memory
}

/// The solver's flow: the loop's bound is [`MAX_STEPS_CAP`]; `finished` applies the configured
/// budget.
macro_rules! solver_flow {
    () => {
        flow! {
            #[flow(name = "orchflow-agent-solver")]
            loop(max = 64) { planner => executor => verifier } until finished => finalize
        }
    };
}

/// A Planner → Executor → Verifier solver: a model, tools and a configuration.
///
/// ```
/// use orchflow_agent::solver::Solver;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // The offline solver: a deterministic stand-in for the model, the real tools.
/// let t = Solver::offline().solve("What is 12 * 12 + 1?").await;
/// assert_eq!(t.answer.as_deref(), Some("145"));
/// # }
/// ```
#[derive(Clone)]
pub struct Solver {
    llm: Arc<dyn LlmClient>,
    tools: Vec<Arc<dyn Tool>>,
    config: SolverConfig,
}

impl Solver {
    /// A solver over `llm` with `tools` (the executor finds them by name: `search`, `code`).
    pub fn new(llm: Arc<dyn LlmClient>, tools: Vec<Arc<dyn Tool>>, config: SolverConfig) -> Self {
        Solver { llm, tools, config }
    }

    /// The offline solver: [`OfflineModel`](crate::offline::OfflineModel) (a deterministic,
    /// rule-based stand-in for a model, labelled as such in its replies) with the real code
    /// sandbox and the built-in local search. Needs no network and no model.
    pub fn offline() -> Self {
        Solver::new(
            Arc::new(crate::offline::OfflineModel::new()),
            crate::offline::offline_tools(),
            SolverConfig {
                model: AgentConfig::default().with_model("offline"),
                ..SolverConfig::default()
            },
        )
    }

    /// The configuration.
    pub fn config(&self) -> &SolverConfig {
        &self.config
    }

    fn env(&self) -> SolverEnv {
        let agent = |name: &str, role: &str| {
            Agent::new(name, role, self.config.model.clone(), Arc::clone(&self.llm))
        };
        SolverEnv {
            planner: agent("planner", &planner_system(&self.tools)),
            verifier: agent(
                "verifier",
                "You check whether the notes gathered so far answer a question.",
            ),
            tools: self.tools.clone(),
            config: self.config.clone(),
            last: std::sync::Mutex::new(None),
        }
    }

    /// Solves `question`. Never fails: a run whose model cannot be reached ends with
    /// [`Outcome::Failed`] and the fallback answer.
    pub async fn solve(&self, question: &str) -> Trajectory {
        let started = Instant::now();
        let result = solver_flow!()
            .run_with_state(Trajectory::new(question), self.env())
            .await;
        finish(question, result, started, &self.config)
    }

    /// Solves `question` as a durable run in `store`, under `run_id`: a checkpoint after every
    /// planner, executor and verifier step, so that [`resume`](Self::resume) can finish it.
    pub async fn solve_durable(
        &self,
        store: impl CheckpointStore + 'static,
        run_id: RunId,
        question: &str,
    ) -> Trajectory {
        let started = Instant::now();
        let flow = solver_flow!();
        let result = flow
            .durable(store)
            .run_as(run_id, Trajectory::new(question), self.env())
            .await;
        finish(question, result, started, &self.config)
    }

    /// Continues the durable run `run_id` from its checkpoint: finished steps (tool calls
    /// included) are not run again; a completed run returns its trajectory at once.
    ///
    /// Fails with [`orchflow::ResumeError`] when the checkpoint is missing, unreadable or of
    /// another flow.
    pub async fn resume(
        &self,
        store: impl CheckpointStore + 'static,
        run_id: RunId,
    ) -> Result<Trajectory, orchflow::ResumeError> {
        let started = Instant::now();
        let flow = solver_flow!();
        let result = flow
            .durable(store)
            .resume_with_state(run_id, self.env())
            .await?;
        Ok(finish("", result, started, &self.config))
    }
}

/// The trajectory of a finished run, or of a failed one: the memory after its last finished
/// step, with [`Outcome::Failed`] and the fallback answer.
fn finish(
    question: &str,
    result: orchflow::FlowResult<Trajectory, SolverEnv>,
    started: Instant,
    config: &SolverConfig,
) -> Trajectory {
    let mut t = match result.output {
        Some(t) => t,
        None => {
            let mut t = result
                .state
                .last()
                .unwrap_or_else(|| Trajectory::new(question));
            let error = result.error.map_or_else(
                || "the run stopped without an output".to_string(),
                |e| e.to_string(),
            );
            t.outcome = Outcome::Failed { error };
            t.answer = Some(config.fallback_answer.clone());
            t
        }
    };
    t.duration_ms = millis(started);
    t
}
