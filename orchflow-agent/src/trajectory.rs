//! Trajectories: everything an agent run decided, called, saw and spent.
//!
//! A [`Trajectory`] is also the solver's memory: the loop carries it from step to step, so a
//! checkpoint of the run is a checkpoint of the trajectory so far. It serialises to JSON (one
//! run) and JSONL (many runs, one per line: [`write_jsonl`], [`read_jsonl`]).

use crate::llm::Usage;
use crate::tools::{ToolError, ToolOutput};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// What the planner chose to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Reason without a tool; `action_input` is the reasoning.
    Think,
    /// Search; `action_input` is the query.
    Search,
    /// Run Python; `action_input` is the program.
    Code,
    /// Give the final answer; `action_input` is the answer.
    Answer,
}

impl Action {
    /// The action's name as the planner writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Think => "think",
            Action::Search => "search",
            Action::Code => "code",
            Action::Answer => "answer",
        }
    }
}

/// The planner's decision: the only model-driven choice of a step.
///
/// Reading a model's reply is lenient where the intent is plain: the action's case does not
/// matter and a few common names are understood (`final_answer`, `python`, `web_search`…); an
/// `action_input` that is not a string is taken from its `query` / `code` / `answer` / `input`
/// field, or else written out as JSON; a missing thought is empty. Anything else is not a
/// decision; in particular only an object is one: a JSON array such as `["t", "answer", "72"]`
/// is not read positionally.
///
/// ```
/// use orchflow_agent::trajectory::{Action, Decision};
/// let d: Decision = serde_json::from_str(
///     r#"{"action": "Search", "action_input": {"query": "speed of light"}}"#,
/// ).unwrap();
/// assert_eq!((d.action, d.action_input.as_str(), d.thought.as_str()), (Action::Search, "speed of light", ""));
/// assert!(serde_json::from_str::<Decision>(r#"{"action": "fly", "action_input": "x"}"#).is_err());
/// assert!(serde_json::from_str::<Decision>(r#"["t", "answer", "72"]"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Decision {
    /// Why.
    #[serde(default)]
    pub thought: String,
    /// What to do.
    pub action: Action,
    /// The action's argument: reasoning, query, program or answer.
    pub action_input: String,
}

/// The fields of a [`Decision`], read leniently; [`Decision`]'s own `Deserialize` admits only
/// a map (serde's derive would also take a sequence, positionally).
#[derive(Deserialize)]
struct DecisionFields {
    #[serde(default)]
    thought: String,
    #[serde(deserialize_with = "lenient::action")]
    action: Action,
    #[serde(deserialize_with = "lenient::text")]
    action_input: String,
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = Decision;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a decision object {thought, action, action_input}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Decision, A::Error> {
                let fields =
                    DecisionFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Decision {
                    thought: fields.thought,
                    action: fields.action,
                    action_input: fields.action_input,
                })
            }
        }
        d.deserialize_map(ObjectOnly)
    }
}

/// Lenient readers for model replies.
pub(crate) mod lenient {
    use super::Action;
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    /// An action by name, any case, with common synonyms.
    pub(crate) fn action<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let name = String::deserialize(d)?;
        let key: String = name
            .trim()
            .to_lowercase()
            .chars()
            .map(|c| if c == '-' || c == ' ' { '_' } else { c })
            .collect();
        Ok(match key.as_str() {
            "think" | "reason" | "thought" | "reflect" => Action::Think,
            "search" | "web_search" | "lookup" | "look_up" | "retrieve" => Action::Search,
            "code" | "python" | "run_code" | "execute" | "calculate" | "compute" => Action::Code,
            "answer" | "final_answer" | "finish" | "final" | "respond" => Action::Answer,
            _ => {
                return Err(D::Error::custom(format!(
                    "unknown action `{name}`: expected think, search, code or answer"
                )));
            }
        })
    }

    /// Text: a string, the first of `query`/`code`/`answer`/`input`/`text` of an object, or any
    /// other value written as JSON.
    pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            serde_json::Value::Object(ref o) => ["query", "code", "answer", "input", "text"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|x| x.as_str()))
                .map_or_else(|| v.to_string(), str::to_string),
            other => other.to_string(),
        })
    }

    /// A yes/no: a boolean, or a string or number that says one.
    pub(crate) fn yes_no<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Bool(b) => Ok(*b),
            serde_json::Value::Number(n) => Ok(n.as_f64().is_some_and(|x| x != 0.0)),
            serde_json::Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "yes" | "y" | "sufficient" | "1" => Ok(true),
                "false" | "no" | "n" | "insufficient" | "not sufficient" | "0" => Ok(false),
                _ => Err(D::Error::custom(format!("not a yes or no: {s:?}"))),
            },
            _ => Err(D::Error::custom(format!("not a yes or no: {v}"))),
        }
    }
}

/// What the planner produced: a decision, or a reply that was not one (recorded as it came).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannerOutput {
    /// A well-formed decision.
    Decision(Decision),
    /// A reply that did not parse as a decision, even after one retry. The step does nothing
    /// but note the problem in memory, counts against the step budget, and scores reward 0.
    Malformed {
        /// The model's reply (shortened).
        raw: String,
        /// Why it did not parse.
        error: String,
    },
}

impl PlannerOutput {
    /// The decision, if the output was one.
    pub fn decision(&self) -> Option<&Decision> {
        match self {
            PlannerOutput::Decision(d) => Some(d),
            PlannerOutput::Malformed { .. } => None,
        }
    }
}

/// One tool call and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub tool: String,
    /// The input given.
    pub input: serde_json::Value,
    /// The output, or why it failed.
    #[serde(with = "tool_result")]
    pub result: Result<ToolOutput, ToolError>,
    /// Wall-clock time of the call.
    pub duration_ms: u64,
}

/// `Result<ToolOutput, ToolError>` as `{"ok": …}` or `{"error": …}`.
mod tool_result {
    use super::{ToolError, ToolOutput};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Repr<T, E> {
        Ok(T),
        Error(E),
    }

    pub fn serialize<S: Serializer>(
        r: &Result<ToolOutput, ToolError>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Ok(v) => Repr::<&ToolOutput, &ToolError>::Ok(v).serialize(s),
            Err(e) => Repr::<&ToolOutput, &ToolError>::Error(e).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<ToolOutput, ToolError>, D::Error> {
        Ok(match Repr::<ToolOutput, ToolError>::deserialize(d)? {
            Repr::Ok(v) => Ok(v),
            Repr::Error(e) => Err(e),
        })
    }
}

/// The verifier's judgement after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether memory suffices to answer (the loop stops when it does).
    pub sufficient: bool,
    /// The verifier's reason.
    pub reason: String,
    /// `false` when the verifier's reply did not parse: then `sufficient` is `false`
    /// ("continue"), and `raw` holds the reply.
    pub parsed: bool,
    /// The unparsable reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// One planner → executor → verifier step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryStep {
    /// 0-based.
    pub index: u32,
    /// The planner's output.
    pub decision: PlannerOutput,
    /// The tool call the executor made (`search` and `code` decisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCall>,
    /// The verifier's verdict (absent after an `answer` decision, which ends the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Tokens used by this step's model calls (planner and verifier).
    pub usage: Usage,
    /// Time spent planning (model calls included).
    pub planner_ms: u64,
    /// Time spent executing.
    pub executor_ms: u64,
    /// Time spent verifying.
    pub verifier_ms: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Still running (the memory of an unfinished run).
    Running,
    /// The planner answered.
    Answered,
    /// The verifier judged memory sufficient; the answer was composed from it.
    Verified,
    /// `max_steps` ran out; the answer is the fallback.
    BudgetExhausted,
    /// The run failed (the model could not be reached, …); the answer is the fallback.
    Failed {
        /// Why.
        error: String,
    },
}

/// A whole run: the question, every step, the answer, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// The question asked.
    pub question: String,
    /// The steps, in order.
    pub steps: Vec<TrajectoryStep>,
    /// The final answer (the fallback when the budget ran out); `None` while running.
    pub answer: Option<String>,
    /// How the run ended.
    pub outcome: Outcome,
    /// Tokens used in all.
    pub usage: Usage,
    /// Wall-clock time of the run (of the last process, for a resumed run).
    pub duration_ms: u64,
}

impl Trajectory {
    /// The start of a run: no steps yet.
    ///
    /// ```
    /// use orchflow_agent::trajectory::{Outcome, Trajectory};
    /// let t = Trajectory::new("What is 6 * 7?");
    /// assert!(t.steps.is_empty());
    /// assert_eq!(t.outcome, Outcome::Running);
    /// ```
    pub fn new(question: impl Into<String>) -> Self {
        Trajectory {
            question: question.into(),
            steps: Vec::new(),
            answer: None,
            outcome: Outcome::Running,
            usage: Usage::default(),
            duration_ms: 0,
        }
    }

    /// The tool calls made, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.steps.iter().filter_map(|s| s.tool_call.as_ref())
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.outcome != Outcome::Running
    }
}

/// Why reading or writing trajectories failed.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is not a trajectory.
    #[error("line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Writes trajectories as JSONL: one JSON object per line.
///
/// ```
/// use orchflow_agent::trajectory::{read_jsonl, write_jsonl, Trajectory};
/// let runs = vec![Trajectory::new("a"), Trajectory::new("b")];
/// let mut buf = Vec::new();
/// write_jsonl(&mut buf, &runs).unwrap();
/// assert_eq!(read_jsonl(&buf[..]).unwrap(), runs);
/// ```
pub fn write_jsonl<'a, W: Write>(
    mut w: W,
    runs: impl IntoIterator<Item = &'a Trajectory>,
) -> Result<(), TrajectoryError> {
    for t in runs {
        serde_json::to_writer(&mut w, t).map_err(std::io::Error::from)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// Reads JSONL trajectories; blank lines are skipped.
pub fn read_jsonl<R: BufRead>(r: R) -> Result<Vec<Trajectory>, TrajectoryError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|source| TrajectoryError::Json {
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(json: &str) -> Result<Decision, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn decisions_are_read_leniently_where_the_intent_is_plain() {
        let d =
            decision(r#"{"thought": "t", "action": "FINAL_ANSWER", "action_input": 42}"#).unwrap();
        assert_eq!((d.action, d.action_input.as_str()), (Action::Answer, "42"));
        let d = decision(r#"{"action": "python", "action_input": {"code": "print(1)"}}"#).unwrap();
        assert_eq!(
            (d.action, d.action_input.as_str()),
            (Action::Code, "print(1)")
        );
        let d = decision(r#"{"action": "web search", "action_input": {"q": 1}}"#).unwrap();
        assert_eq!(
            (d.action, d.action_input.as_str()),
            (Action::Search, r#"{"q":1}"#)
        );
        let d = decision(r#"{"action": " Think ", "action_input": null}"#).unwrap();
        assert_eq!((d.action, d.action_input.as_str()), (Action::Think, ""));
    }

    #[test]
    fn what_is_not_a_decision_stays_an_error() {
        assert!(decision(r#"{"action": "dance", "action_input": "x"}"#).is_err());
        assert!(decision(r#"{"action": 3, "action_input": "x"}"#).is_err());
        assert!(decision(r#"{"action_input": "x"}"#).is_err());
        assert!(decision(r#"["search", "x"]"#).is_err());
    }

    #[test]
    fn the_schema_still_asks_for_strings() {
        let schema = serde_json::to_value(schemars::schema_for!(Decision)).unwrap();
        assert_eq!(schema["properties"]["action_input"]["type"], "string");
        assert_eq!(schema["title"], "Decision");
    }
}
