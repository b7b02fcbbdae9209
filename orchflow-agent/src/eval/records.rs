//! The results file: one [`EvalRecord`] per answered item, appended as it is known, and read
//! back to resume an eval.

use super::*;

/// Why an item was not answered correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The step budget ran out (the fallback answer was wrong or empty).
    BudgetExhausted,
    /// The run failed ([`Outcome::Failed`]: the model could not be reached…).
    FailedRun,
    /// The solver returned an unfinished trajectory ([`Outcome::Running`]).
    Unfinished,
    /// The run ended normally but no answer could be extracted from it.
    NoAnswer,
    /// An answer was extracted, and it is wrong.
    WrongAnswer,
}

impl FailureKind {
    /// The name used in reports (`budget_exhausted`, `wrong_answer`…).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::BudgetExhausted => "budget_exhausted",
            FailureKind::FailedRun => "failed_run",
            FailureKind::Unfinished => "unfinished",
            FailureKind::NoAnswer => "no_answer",
            FailureKind::WrongAnswer => "wrong_answer",
        }
    }
}

/// The short name of an outcome: `running`, `answered`, `verified`, `budget_exhausted` or
/// `failed`.
pub fn outcome_kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "running",
        Outcome::Answered => "answered",
        Outcome::Verified => "verified",
        Outcome::BudgetExhausted => "budget_exhausted",
        Outcome::Failed { .. } => "failed",
    }
}

/// One line of the results file: an item's score, summary numbers and the whole trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The item's id.
    pub id: String,
    /// The item's kind.
    pub kind: AnswerKind,
    /// Whether the prediction equals the expected answer.
    pub correct: bool,
    /// What was extracted from the trajectory's answer.
    pub predicted: Option<String>,
    /// The expected answer, normalised.
    pub expected: String,
    /// How many steps the run took.
    pub steps: usize,
    /// Tool calls, per tool name.
    pub tool_calls: BTreeMap<String, usize>,
    /// Failed tool calls, per error kind ([`ToolError::kind`](crate::ToolError::kind)).
    pub tool_errors: BTreeMap<String, usize>,
    /// Planner outputs that were not decisions.
    pub malformed_decisions: usize,
    /// How the run ended ([`outcome_kind`]).
    pub outcome: String,
    /// Why the item is not correct (`None` when it is).
    pub failure: Option<FailureKind>,
    /// The trajectory's duration.
    pub duration_ms: u64,
    /// Wall-clock time of the `solve` call, as measured by the runner.
    pub wall_ms: u64,
    /// Tokens used.
    pub usage: Usage,
    /// The whole run.
    pub trajectory: Trajectory,
}

impl EvalRecord {
    /// Scores a trajectory against its item and summarises it. `wall` is the time the solve
    /// took as seen from outside (use [`Duration::ZERO`] when unknown).
    pub fn new(item: &EvalItem, trajectory: Trajectory, wall: Duration) -> Self {
        let score = item.score(trajectory.answer.as_deref().unwrap_or(""));
        let mut tool_calls = BTreeMap::new();
        let mut tool_errors = BTreeMap::new();
        for call in trajectory.tool_calls() {
            *tool_calls.entry(call.tool.clone()).or_insert(0) += 1;
            if let Err(e) = &call.result {
                *tool_errors.entry(e.kind().to_string()).or_insert(0) += 1;
            }
        }
        let malformed_decisions = trajectory
            .steps
            .iter()
            .filter(|s| matches!(s.decision, PlannerOutput::Malformed { .. }))
            .count();
        let failure = if score.correct {
            None
        } else {
            Some(match trajectory.outcome {
                Outcome::Failed { .. } => FailureKind::FailedRun,
                Outcome::Running => FailureKind::Unfinished,
                Outcome::BudgetExhausted => FailureKind::BudgetExhausted,
                Outcome::Answered | Outcome::Verified if score.predicted.is_none() => {
                    FailureKind::NoAnswer
                }
                Outcome::Answered | Outcome::Verified => FailureKind::WrongAnswer,
            })
        };
        EvalRecord {
            id: item.id.clone(),
            kind: item.kind,
            correct: score.correct,
            predicted: score.predicted,
            expected: score.expected,
            steps: trajectory.steps.len(),
            tool_calls,
            tool_errors,
            malformed_decisions,
            outcome: outcome_kind(&trajectory.outcome).to_string(),
            failure,
            duration_ms: trajectory.duration_ms,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            usage: trajectory.usage,
            trajectory,
        }
    }
}

/// Reads a results file written by [`run_eval`]. Lines that are not records (a line torn by
/// an interrupted run, say) are skipped with a warning; a missing file reads as empty.
///
/// Fails with [`EvalError::Io`] when the file exists but cannot be read.
pub fn read_results(path: impl AsRef<Path>) -> Result<Vec<EvalRecord>, EvalError> {
    let path = path.as_ref();
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_results(&String::from_utf8_lossy(&bytes), path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error(path)(e)),
    }
}

pub(super) fn parse_results(text: &str, path: &Path) -> Vec<EvalRecord> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EvalRecord>(line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(
                "{}, line {}: not a result, ignored ({e})",
                path.display(),
                i + 1
            ),
        }
    }
    out
}

/// Opens the results file for appending after reading what it holds. A last line without a
/// newline that is not a record (torn by an interrupted write) is cut off; one that is a record
/// gets its newline.
pub(super) fn open_results(path: &Path) -> Result<(std::fs::File, Vec<EvalRecord>), EvalError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(path)(e)),
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let tail = String::from_utf8_lossy(&bytes[complete..]).into_owned();
    let mut records = parse_results(&String::from_utf8_lossy(&bytes[..complete]), path);
    let mut needs_newline = false;
    let mut truncate = false;
    if !tail.trim().is_empty() {
        match serde_json::from_str::<EvalRecord>(&tail) {
            Ok(r) => {
                records.push(r);
                needs_newline = true;
            }
            Err(_) => {
                tracing::warn!(
                    "{}: ignoring a torn last line ({} bytes)",
                    path.display(),
                    tail.len()
                );
                truncate = true;
            }
        }
    } else if !tail.is_empty() {
        truncate = true;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error(path))?;
    if truncate {
        file.set_len(complete as u64).map_err(io_error(path))?;
    }
    if needs_newline {
        file.write_all(b"\n").map_err(io_error(path))?;
    }
    Ok((file, records))
}
