//! Process-reward data pieces that need no GPU.
//!
//! A process reward model (PRM) scores each step of a trajectory. This module builds what it
//! scores and what a trainer reads:
//!
//! * [`step_text`]: the text scored for one step = [`step_prompt`] (the question and the memory
//!   of the previous steps) followed by [`step_completion`] (the planner's output for this
//!   step). The step's own tool result is **excluded**: the reward judges the decision, not
//!   the luck of its outcome.
//! * [`step_reward`]: 0 for a malformed planner output, else the caller's [`StepScorer`]
//!   clamped to `[0, 1]`.
//! * Dynamic sampling: [`filter_groups`] drops prompt groups (several trajectories for one
//!   question) whose rewards have almost no spread (population standard deviation below
//!   [`MIN_REWARD_STD`]): they carry no signal for group-relative advantages.
//! * Export: [`write_prm_jsonl`], one JSON line per step, `{prompt, completion, reward, …}`
//!   ([`PrmRecord`]).
//!
//! # The memory format
//!
//! The memory lists every earlier step, numbered from 1, as the planner saw it: its thought,
//! action and input, and its tool result (the output text, or the error's kind and message),
//! shortened to [`MEMORY_RESULT_CHARS`]. A malformed planner output appears as such, with its
//! parse error. Verifier verdicts are left out: they are another model's judgement, not
//! evidence, and the step is scored on what the planner knew.
//!
//! ```
//! use orchflow_agent::prm::{step_reward, step_text};
//! use orchflow_agent::trajectory::{Action, Decision, PlannerOutput, TrajectoryStep};
//! use orchflow_agent::Usage;
//!
//! let step = TrajectoryStep {
//!     index: 0,
//!     decision: PlannerOutput::Decision(Decision {
//!         thought: "Multiply.".into(),
//!         action: Action::Answer,
//!         action_input: "42".into(),
//!     }),
//!     tool_call: None,
//!     verdict: None,
//!     usage: Usage::default(),
//!     planner_ms: 0,
//!     executor_ms: 0,
//!     verifier_ms: 0,
//! };
//! let text = step_text("What is 6 * 7?", &[], &step);
//! assert!(text.starts_with("Question:\nWhat is 6 * 7?\n\nMemory:\n(empty)\n\nNext step:\n"));
//! assert!(text.ends_with(r#"{"thought":"Multiply.","action":"answer","action_input":"42"}"#));
//! // Any `Fn(&str) -> f64` is a scorer; its score is clamped to [0, 1].
//! let r = step_reward("What is 6 * 7?", &[], &step, &|t: &str| {
//!     if t.contains("Multiply") { 1.5 } else { 0.0 }
//! });
//! assert_eq!(r, 1.0);
//! ```

use crate::trajectory::{PlannerOutput, Trajectory, TrajectoryStep};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Prompt groups whose rewards have a population standard deviation below this are dropped by
/// [`filter_groups`].
pub const MIN_REWARD_STD: f64 = 1e-3;

/// The longest tool result quoted in the memory, in characters (longer ones are cut, with a
/// marker).
pub const MEMORY_RESULT_CHARS: usize = 1500;

/// The prompt part of a step's text: the question, then the memory of the steps before it
/// (see the [module documentation](self) for the format), then `Next step:` and a newline.
pub fn step_prompt(question: &str, memory_before: &[TrajectoryStep]) -> String {
    let mut out = format!("Question:\n{}\n\nMemory:\n", question.trim());
    if memory_before.is_empty() {
        out.push_str("(empty)\n");
    }
    for (i, step) in memory_before.iter().enumerate() {
        match &step.decision {
            PlannerOutput::Decision(d) => {
                out.push_str(&format!(
                    "Step {} ({}):\nThought: {}\nInput: {}\n",
                    i + 1,
                    d.action.as_str(),
                    d.thought.trim(),
                    d.action_input.trim()
                ));
            }
            PlannerOutput::Malformed { raw, error } => {
                out.push_str(&format!(
                    "Step {} (malformed planner output):\nOutput: {}\nError: {}\n",
                    i + 1,
                    raw.trim(),
                    error.trim()
                ));
            }
        }
        if let Some(call) = &step.tool_call {
            let result = match &call.result {
                Ok(output) => output.content.trim().to_string(),
                Err(e) => format!("error ({}): {e}", e.kind()),
            };
            out.push_str(&format!(
                "Result ({}): {}\n",
                call.tool,
                shorten(&result, MEMORY_RESULT_CHARS)
            ));
        }
    }
    out.push_str("\nNext step:\n");
    out
}

/// The completion part of a step's text: what the planner produced, as it would be trained
/// to produce it. A decision is its JSON (`{"thought", "action", "action_input"}`); a
/// malformed output is its raw text. The step's tool result and verdict are not included.
pub fn step_completion(step: &TrajectoryStep) -> String {
    match &step.decision {
        PlannerOutput::Decision(d) => serde_json::to_string(d).unwrap_or_default(),
        PlannerOutput::Malformed { raw, .. } => raw.clone(),
    }
}

/// The text a process reward model scores for `step`: [`step_prompt`] followed by
/// [`step_completion`]. `memory_before` are the steps before it, in order (for step `i` of a
/// trajectory: `&trajectory.steps[..i]`). This step's tool result is excluded.
pub fn step_text(
    question: &str,
    memory_before: &[TrajectoryStep],
    step: &TrajectoryStep,
) -> String {
    let mut text = step_prompt(question, memory_before);
    text.push_str(&step_completion(step));
    text
}

/// A process reward model, or anything that scores a step text: higher is better, expected in
/// `[0, 1]` ([`step_reward`] clamps). Closures `Fn(&str) -> f64` are scorers.
pub trait StepScorer {
    /// The score of a step text (see [`step_text`]).
    fn score(&self, text: &str) -> f64;
}

impl<F: Fn(&str) -> f64> StepScorer for F {
    fn score(&self, text: &str) -> f64 {
        self(text)
    }
}

/// The reward of a step: 0 for a malformed planner output (the scorer is not asked), otherwise
/// the scorer's score of [`step_text`], clamped to `[0, 1]` (NaN counts as 0).
pub fn step_reward<S: StepScorer + ?Sized>(
    question: &str,
    memory_before: &[TrajectoryStep],
    step: &TrajectoryStep,
    scorer: &S,
) -> f64 {
    if matches!(step.decision, PlannerOutput::Malformed { .. }) {
        return 0.0;
    }
    clamp01(scorer.score(&step_text(question, memory_before, step)))
}

/// The reward of every step of a trajectory, in order (see [`step_reward`]).
pub fn trajectory_step_rewards<S: StepScorer + ?Sized>(
    trajectory: &Trajectory,
    scorer: &S,
) -> Vec<f64> {
    (0..trajectory.steps.len())
        .map(|i| {
            step_reward(
                &trajectory.question,
                &trajectory.steps[..i],
                &trajectory.steps[i],
                scorer,
            )
        })
        .collect()
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// The population standard deviation of `rewards` (dividing by `n`); 0 for no or one value,
/// NaN when a value is NaN.
///
/// ```
/// use orchflow_agent::prm::reward_std;
/// assert_eq!(reward_std(&[0.0, 1.0]), 0.5);
/// assert_eq!(reward_std(&[]), 0.0);
/// ```
pub fn reward_std(rewards: &[f64]) -> f64 {
    if rewards.len() < 2 {
        return if rewards.iter().any(|r| r.is_nan()) {
            f64::NAN
        } else {
            0.0
        };
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// A trajectory with its rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredTrajectory {
    /// The run.
    pub trajectory: Trajectory,
    /// One reward per step, in order (see [`step_reward`]).
    pub step_rewards: Vec<f64>,
    /// The trajectory's reward, used to compare trajectories of one prompt group (an outcome
    /// reward, the mean step reward…: the caller's choice).
    pub reward: f64,
}

impl ScoredTrajectory {
    /// A trajectory with the given rewards.
    pub fn new(trajectory: Trajectory, step_rewards: Vec<f64>, reward: f64) -> Self {
        ScoredTrajectory {
            trajectory,
            step_rewards,
            reward,
        }
    }

    /// Scores every step with `scorer` ([`trajectory_step_rewards`]); the trajectory's reward
    /// is the mean step reward (0 for a trajectory without steps).
    pub fn from_scorer<S: StepScorer + ?Sized>(trajectory: Trajectory, scorer: &S) -> Self {
        let step_rewards = trajectory_step_rewards(&trajectory, scorer);
        let reward = if step_rewards.is_empty() {
            0.0
        } else {
            step_rewards.iter().sum::<f64>() / step_rewards.len() as f64
        };
        ScoredTrajectory {
            trajectory,
            step_rewards,
            reward,
        }
    }
}

/// Several trajectories sampled for the same question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptGroup {
    /// The question.
    pub question: String,
    /// The trajectories.
    pub samples: Vec<ScoredTrajectory>,
}

impl PromptGroup {
    /// The trajectories' rewards, in order.
    pub fn rewards(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.reward).collect()
    }

    /// The population standard deviation of the rewards ([`reward_std`]).
    pub fn reward_std(&self) -> f64 {
        reward_std(&self.rewards())
    }
}

/// Groups trajectories by question, groups in the order their question first appears.
pub fn group_by_question(samples: Vec<ScoredTrajectory>) -> Vec<PromptGroup> {
    let mut groups: Vec<PromptGroup> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for s in samples {
        let q = s.trajectory.question.clone();
        let i = *index.entry(q.clone()).or_insert_with(|| {
            groups.push(PromptGroup {
                question: q,
                samples: Vec::new(),
            });
            groups.len() - 1
        });
        groups[i].samples.push(s);
    }
    groups
}

/// A prompt group [`filter_groups`] dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedGroup {
    /// The question.
    pub question: String,
    /// How many trajectories it had.
    pub samples: usize,
    /// Their mean reward (0 for an empty group).
    pub mean_reward: f64,
    /// Their rewards' population standard deviation.
    pub reward_std: f64,
}

/// What [`filter_groups`] kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterStats {
    /// Groups given.
    pub groups_in: usize,
    /// Groups kept.
    pub groups_kept: usize,
    /// Groups dropped.
    pub groups_dropped: usize,
    /// Trajectories in the kept groups.
    pub samples_kept: usize,
    /// Trajectories in the dropped groups.
    pub samples_dropped: usize,
    /// Dropped groups whose rewards were all (about) 0: too hard.
    pub dropped_all_zero: usize,
    /// Dropped groups whose rewards were all (about) 1: too easy.
    pub dropped_all_one: usize,
    /// Every dropped group, in input order.
    pub dropped: Vec<DroppedGroup>,
}

/// The kept groups and the statistics of [`filter_groups`].
#[derive(Debug, Clone, PartialEq)]
pub struct FilteredGroups {
    /// The groups with enough reward spread, in input order.
    pub kept: Vec<PromptGroup>,
    /// What was dropped.
    pub stats: FilterStats,
}

/// Dynamic sampling: keeps the prompt groups whose rewards' population standard deviation is
/// at least [`MIN_REWARD_STD`], drops the others (all-equal rewards give zero group-relative
/// advantages: no learning signal). Groups with fewer than two trajectories have no spread and
/// are dropped; so are groups with a NaN reward.
///
/// ```
/// use orchflow_agent::prm::{filter_groups, PromptGroup, ScoredTrajectory};
/// use orchflow_agent::trajectory::Trajectory;
///
/// let group = |q: &str, rewards: &[f64]| PromptGroup {
///     question: q.into(),
///     samples: rewards
///         .iter()
///         .map(|&r| ScoredTrajectory::new(Trajectory::new(q), vec![], r))
///         .collect(),
/// };
/// let out = filter_groups(vec![group("easy", &[1.0, 1.0]), group("useful", &[0.0, 1.0])]);
/// assert_eq!(out.kept.len(), 1);
/// assert_eq!(out.kept[0].question, "useful");
/// assert_eq!(out.stats.dropped_all_one, 1);
/// ```
pub fn filter_groups(groups: Vec<PromptGroup>) -> FilteredGroups {
    filter_groups_with(groups, MIN_REWARD_STD)
}

/// [`filter_groups`] with another threshold: keeps the groups whose reward standard deviation
/// is at least `min_std`.
pub fn filter_groups_with(groups: Vec<PromptGroup>, min_std: f64) -> FilteredGroups {
    let mut stats = FilterStats {
        groups_in: groups.len(),
        ..FilterStats::default()
    };
    let mut kept = Vec::new();
    for g in groups {
        let rewards = g.rewards();
        let std = reward_std(&rewards);
        // `!(std >= min)` also drops NaN.
        if rewards.len() >= 2 && std >= min_std {
            stats.groups_kept += 1;
            stats.samples_kept += g.samples.len();
            kept.push(g);
            continue;
        }
        let mean = if rewards.is_empty() {
            0.0
        } else {
            rewards.iter().sum::<f64>() / rewards.len() as f64
        };
        if !rewards.is_empty() && std.is_finite() {
            if mean.abs() < min_std.max(1e-12) {
                stats.dropped_all_zero += 1;
            } else if (mean - 1.0).abs() < min_std.max(1e-12) {
                stats.dropped_all_one += 1;
            }
        }
        stats.groups_dropped += 1;
        stats.samples_dropped += g.samples.len();
        stats.dropped.push(DroppedGroup {
            question: g.question,
            samples: rewards.len(),
            mean_reward: mean,
            reward_std: std,
        });
    }
    FilteredGroups { kept, stats }
}

/// One line of the export: one step of one trajectory, ready for a TRL-style trainer.
///
/// `prompt + completion` is exactly [`step_text`]; `reward` is the step's reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmRecord {
    /// The question and the memory before the step ([`step_prompt`]).
    pub prompt: String,
    /// The planner's output for the step ([`step_completion`]).
    pub completion: String,
    /// The step's reward.
    pub reward: f64,
    /// The question, for grouping.
    pub question: String,
    /// The step's position in its trajectory (0-based).
    pub step: usize,
    /// How many steps the trajectory has.
    pub num_steps: usize,
    /// Whether the planner output was malformed (its reward is then 0).
    pub malformed: bool,
    /// The trajectory's reward ([`ScoredTrajectory::reward`]).
    pub trajectory_reward: f64,
}

/// The export lines of one scored trajectory: one per step that has a reward (steps beyond
/// `step_rewards` are left out).
pub fn prm_records(sample: &ScoredTrajectory) -> Vec<PrmRecord> {
    let t = &sample.trajectory;
    t.steps
        .iter()
        .zip(&sample.step_rewards)
        .enumerate()
        .map(|(i, (step, &reward))| PrmRecord {
            prompt: step_prompt(&t.question, &t.steps[..i]),
            completion: step_completion(step),
            reward,
            question: t.question.clone(),
            step: i,
            num_steps: t.steps.len(),
            malformed: matches!(step.decision, PlannerOutput::Malformed { .. }),
            trajectory_reward: sample.reward,
        })
        .collect()
}

/// Writes the export as JSONL: for each trajectory, one [`PrmRecord`] line per step
/// (`{"prompt", "completion", "reward", "question", "step", "num_steps", "malformed",
/// "trajectory_reward"}`), then flushes. Returns the number of lines written.
///
/// Fails when the writer does.
pub fn write_prm_jsonl<W: Write>(mut w: W, samples: &[ScoredTrajectory]) -> std::io::Result<usize> {
    let mut lines = 0;
    for sample in samples {
        for record in prm_records(sample) {
            serde_json::to_writer(&mut w, &record)?;
            w.write_all(b"\n")?;
            lines += 1;
        }
    }
    w.flush()?;
    Ok(lines)
}

/// `s` cut to at most `max` characters, with a marker when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… [truncated]", &s[..cut]),
    }
}
