//! Scoring a JSONL benchmark: integer answers (as in AIME) and multiple choice (as in GPQA).
//!
//! * Items: [`EvalItem`]s, one JSON object per line ([`read_items`], [`parse_items`]):
//!   `{"id": "q1", "question": "…", "answer": "42", "kind": "integer"}`, or
//!   `"kind": "choice"` with a letter answer and the options in the question text.
//! * Extraction: [`extract_integer`] (the last `\boxed{…}`, else the final integer of the text)
//!   and [`extract_choice`] (`\boxed{C}`, "the answer is (C)", "Answer: C", a reply that
//!   starts with the option, a final lone letter; a hedge such as "B or C" is no answer);
//!   [`EvalItem::score`] applies the right one to a reply.
//! * The runner: [`run_eval`] asks a caller-given `solve` closure for a [`Trajectory`] per item,
//!   a bounded number at a time, shows a progress bar, appends each result to a JSONL file as
//!   soon as it is known ([`EvalRecord`], one line, flushed) and resumes from that file: items
//!   already in it are not asked again.
//! * The report: [`EvalReport`] (accuracy, counts, steps, tool use, failures by kind, time,
//!   tokens), written as JSON and Markdown by [`EvalReport::write`].
//!
//! ```
//! use orchflow_agent::eval::{extract_choice, extract_integer};
//! assert_eq!(extract_integer(r"so $x = \boxed{042}$"), Some(42));
//! assert_eq!(extract_integer("We get 1,024 in the end."), Some(1024));
//! assert_eq!(extract_choice("Therefore, the answer is (c).", 4), Some('C'));
//! ```

mod extract;
mod records;
mod report;
mod runner;

pub use extract::*;
pub use records::*;
pub use report::*;
pub use runner::*;

use crate::llm::Usage;
use crate::trajectory::{Outcome, PlannerOutput, Trajectory};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How an item's answer is given and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    /// An integer, compared as a number (`042`, `42` and `42.0` are equal). Also read as
    /// `"int"` or `"aime"`.
    #[serde(alias = "int", alias = "aime")]
    Integer,
    /// A letter naming one of the options (`A`, `B`, …), case-insensitive. Also read as `"mc"`,
    /// `"multiple_choice"` or `"gpqa"`.
    #[serde(alias = "mc", alias = "multiple_choice", alias = "gpqa")]
    Choice,
}

impl AnswerKind {
    /// `integer` or `choice`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Integer => "integer",
            AnswerKind::Choice => "choice",
        }
    }
}

/// One benchmark question.
///
/// In JSONL, `id` and `answer` may be strings or numbers (`"answer": 42`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalItem {
    /// A unique identifier (results are resumed by id).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The question as the solver gets it (for a choice item, with its options).
    pub question: String,
    /// The expected answer: an integer, or an option letter.
    #[serde(deserialize_with = "string_or_number")]
    pub answer: String,
    /// How the answer is compared.
    pub kind: AnswerKind,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        S(String),
        I(i64),
        U(u64),
        F(f64),
    }
    Ok(match Repr::deserialize(d)? {
        Repr::S(s) => s,
        Repr::I(i) => i.to_string(),
        Repr::U(u) => u.to_string(),
        Repr::F(f) => f.to_string(),
    })
}

/// How a reply was scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// What was extracted from the reply (an integer in decimal, or an upper-case letter);
    /// `None` when nothing could be.
    pub predicted: Option<String>,
    /// The expected answer, normalised the same way.
    pub expected: String,
    /// Whether they are equal.
    pub correct: bool,
}

impl EvalItem {
    /// The expected answer, normalised: the integer in decimal (`"042"` → `"42"`), or the
    /// upper-case letter.
    ///
    /// Fails with [`EvalError::InvalidItem`] when the answer is not an integer (for
    /// [`AnswerKind::Integer`]) or not a single letter (for [`AnswerKind::Choice`]).
    pub fn expected(&self) -> Result<String, EvalError> {
        let invalid = |reason: String| EvalError::InvalidItem {
            id: self.id.clone(),
            reason,
        };
        match self.kind {
            AnswerKind::Integer => parse_integer(&self.answer)
                .map(|n| n.to_string())
                .ok_or_else(|| invalid(format!("answer {:?} is not an integer", self.answer))),
            AnswerKind::Choice => {
                let a = self.answer.trim().trim_matches(|c| c == '(' || c == ')');
                let mut chars = a.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_alphabetic() => {
                        Ok(c.to_ascii_uppercase().to_string())
                    }
                    _ => Err(invalid(format!(
                        "answer {:?} is not an option letter",
                        self.answer
                    ))),
                }
            }
        }
    }

    /// How many options a choice item has: the options lettered in its question (`(A)`,
    /// `A)`, `A.` or `A:` at a line start…, counted while consecutive from A), at least 4 and at
    /// least enough for the expected letter.
    pub fn option_count(&self) -> usize {
        let expected = self
            .expected()
            .ok()
            .and_then(|e| e.chars().next())
            .map_or(0, |c| (c as usize) - ('A' as usize) + 1);
        option_count(&self.question).max(expected)
    }

    /// Scores a reply (the trajectory's final answer): extracts the prediction for this item's
    /// kind and compares it with the expected answer. An item whose expected answer is invalid
    /// scores as wrong (never panics).
    ///
    /// ```
    /// use orchflow_agent::eval::{AnswerKind, EvalItem};
    /// let item = EvalItem {
    ///     id: "q1".into(),
    ///     question: "What is 6 * 7?".into(),
    ///     answer: "42".into(),
    ///     kind: AnswerKind::Integer,
    /// };
    /// let s = item.score(r"6 * 7 = \boxed{42}");
    /// assert!(s.correct);
    /// assert_eq!(s.predicted.as_deref(), Some("42"));
    /// assert!(!item.score("I do not know").correct);
    /// ```
    pub fn score(&self, reply: &str) -> Score {
        let expected = self.expected().unwrap_or_default();
        let predicted = match self.kind {
            AnswerKind::Integer => extract_integer(reply).map(|n| n.to_string()),
            AnswerKind::Choice => extract_choice(reply, self.option_count()).map(|c| c.to_string()),
        };
        let correct = !expected.is_empty() && predicted.as_deref() == Some(expected.as_str());
        Score {
            predicted,
            expected,
            correct,
        }
    }
}

/// Counts the options lettered in a question: the largest `L` such that every letter from `A`
/// to `L` appears as `(X)`, or at a line start as `X)`, `X.` or `X:`; 4 when fewer are found.
///
/// ```
/// use orchflow_agent::eval::option_count;
/// assert_eq!(option_count("Pick one: (A) 1 (B) 2 (C) 3 (D) 4 (E) 5"), 5);
/// assert_eq!(option_count("A) x\nB) y"), 4);
/// ```
pub fn option_count(question: &str) -> usize {
    let mut count = 0;
    for (i, letter) in ('A'..='Z').enumerate() {
        let paren = format!("({letter})");
        let at_line_start = question.lines().any(|l| {
            let l = l.trim_start();
            let mut cs = l.chars();
            cs.next() == Some(letter) && matches!(cs.next(), Some(')' | '.' | ':'))
        });
        if question.contains(&paren) || at_line_start {
            count = i + 1;
        } else {
            break;
        }
    }
    count.max(4)
}

// ---------------------------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------------------------

/// Why an eval could not be read, run or reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the items file is not an item.
    #[error("{origin}, line {line}: {reason}")]
    Parse {
        /// The file (or `<string>`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// Two items share an id.
    #[error("duplicate item id {id:?}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// An item's expected answer does not fit its kind.
    #[error("item {id:?}: {reason}")]
    InvalidItem {
        /// The item's id.
        id: String,
        /// Why.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses JSONL items (one [`EvalItem`] per line; blank lines skipped) and checks them.
///
/// Fails with [`EvalError::Parse`] for a line that is not an item, [`EvalError::InvalidItem`]
/// for an expected answer that does not fit its kind, and [`EvalError::DuplicateId`].
///
/// ```
/// let items = orchflow_agent::eval::parse_items(
///     r#"{"id": 1, "question": "6*7?", "answer": 42, "kind": "integer"}"#,
/// ).unwrap();
/// assert_eq!(items[0].id, "1");
/// assert_eq!(items[0].answer, "42");
/// ```
pub fn parse_items(jsonl: &str) -> Result<Vec<EvalItem>, EvalError> {
    parse_items_from(jsonl, "<string>")
}

fn parse_items_from(jsonl: &str, origin: &str) -> Result<Vec<EvalItem>, EvalError> {
    let mut items = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: EvalItem = serde_json::from_str(line).map_err(|e| EvalError::Parse {
            origin: origin.to_string(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        items.push(item);
    }
    check_items(&items)?;
    Ok(items)
}

/// Reads and checks a JSONL items file (see [`parse_items`]); also fails with
/// [`EvalError::Io`] when the file cannot be read.
pub fn read_items(path: impl AsRef<Path>) -> Result<Vec<EvalItem>, EvalError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    parse_items_from(&text, &path.display().to_string())
}

/// Checks that ids are unique and every expected answer fits its kind.
fn check_items(items: &[EvalItem]) -> Result<(), EvalError> {
    let mut seen = HashSet::new();
    for item in items {
        if !seen.insert(item.id.as_str()) {
            return Err(EvalError::DuplicateId {
                id: item.id.clone(),
            });
        }
        item.expected()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(text: &str) -> Vec<Option<i64>> {
        number_tokens(text).into_iter().map(|t| t.value).collect()
    }

    #[test]
    fn number_tokens_cases() {
        assert_eq!(ints("1,234 and 5"), [Some(1234), Some(5)]);
        assert_eq!(ints("1,2,3"), [Some(1), Some(2), Some(3)]);
        assert_eq!(ints("3.5 or 4.00"), [None, Some(4)]);
        assert_eq!(ints("x = -3, 5-2"), [Some(-3), Some(5), Some(2)]);
        assert_eq!(ints("H2O x2 log_2"), Vec::<Option<i64>>::new());
        assert_eq!(ints("(−7)"), [Some(-7)]);
        assert_eq!(ints("99999999999999999999"), [None]);
        assert_eq!(ints("12,3456"), [Some(12), Some(3456)]);
        assert_eq!(ints("ends with 1,"), [Some(1)]);
    }

    #[test]
    fn words_and_positions() {
        let w: Vec<_> = words("a (bc) d").collect();
        assert_eq!(w, [(0, "a"), (3, "bc"), (7, "d")]);
        let p: Vec<_> = word_positions("answer answers my answer.", "answer").collect();
        assert_eq!(p, [0, 18]);
    }
}
