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
// Extraction
// ---------------------------------------------------------------------------------------------

/// The content of the last well-formed `\boxed{…}` (or `\fbox{…}`) of a text, braces matched
/// (nested braces allowed); an unclosed one is ignored. `\boxed 7` (no braces) gives `7`.
///
/// ```
/// use orchflow_agent::eval::last_boxed;
/// assert_eq!(last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}"), Some(r"\frac{1}{2}"));
/// assert_eq!(last_boxed(r"\boxed{12} and a torn \boxed{3"), Some("12"));
/// assert_eq!(last_boxed("no box"), None);
/// ```
pub fn last_boxed(text: &str) -> Option<&str> {
    let mut found = None;
    let mut search_from = 0;
    while let Some((pos, len)) = next_box_command(text, search_from) {
        search_from = pos + len;
        let after = &text[pos + len..];
        let trimmed = after.trim_start();
        let offset = pos + len + (after.len() - trimmed.len());
        if let Some(inner) = trimmed.strip_prefix('{') {
            let mut depth = 1usize;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            found = Some(&text[offset + 1..offset + 1 + i]);
                            break;
                        }
                    }
                    _ => {}
                }
            }
        } else if after.starts_with(' ') {
            let token: &str = trimmed
                .split(|c: char| c.is_whitespace() || c == '$')
                .next()
                .unwrap_or("");
            if !token.is_empty() {
                found = Some(token);
            }
        }
    }
    found
}

/// The next `\boxed` or `\fbox` at or after `from`: its byte position and length.
fn next_box_command(text: &str, from: usize) -> Option<(usize, usize)> {
    let rest = text.get(from..)?;
    let b = rest.find("\\boxed").map(|p| (p, 6));
    let f = rest.find("\\fbox").map(|p| (p, 5));
    let (p, len) = match (b, f) {
        (Some(b), Some(f)) => {
            if b.0 <= f.0 {
                b
            } else {
                f
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    Some((from + p, len))
}

/// Removes LaTeX spacing, `$`, `\text{…}`-style wrappers, degree signs and percent signs, and
/// all braces, so that `1{,}000`, `\text{42}` or `42^\circ` read as plain numbers.
fn clean_latex(s: &str) -> String {
    let mut s = s.replace('\u{2212}', "-");
    for (from, to) in [
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", " "),
        ("{,}", ","),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\%", ""),
        ("%", ""),
        ("$", ""),
        ("\\displaystyle", ""),
        ("\\textbf", ""),
        ("\\textrm", ""),
        ("\\text", ""),
        ("\\mathrm", ""),
        ("\\mathbf", ""),
        ("\\boxed", ""),
    ] {
        s = s.replace(from, to);
    }
    s.retain(|c| c != '{' && c != '}');
    s
}

/// Parses a whole string as one integer, tolerantly: surrounding whitespace, LaTeX spacing and
/// `$`, a sign, leading zeros, thousands separators (`1,234`, `1 234`, `1{,}234`), a trailing
/// `.0…` and a final period are accepted. Anything else (fractions, other text) gives `None`,
/// as does a value outside `i64`.
///
/// ```
/// use orchflow_agent::eval::parse_integer;
/// assert_eq!(parse_integer(" 042 "), Some(42));
/// assert_eq!(parse_integer("1,234"), Some(1234));
/// assert_eq!(parse_integer("-7.00"), Some(-7));
/// assert_eq!(parse_integer("3.5"), None);
/// assert_eq!(parse_integer("12,34"), None);
/// ```
pub fn parse_integer(s: &str) -> Option<i64> {
    let cleaned = clean_latex(s);
    let mut t: String = cleaned.split_whitespace().collect();
    if t.ends_with('.') {
        t.pop();
    }
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t.as_str()),
    };
    let (int_part, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b == b'0'))
    {
        return None;
    }
    let digits = if int_part.contains(',') {
        let groups: Vec<&str> = int_part.split(',').collect();
        let first_ok = (1..=3).contains(&groups[0].len());
        let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
        if !first_ok || !rest_ok {
            return None;
        }
        groups.concat()
    } else {
        int_part.to_string()
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if negative { -n } else { n })
}

/// A number found in free text: its value when it is an integer (`None` for `3.5` or a value
/// outside `i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumberToken {
    value: Option<i64>,
}

/// The numbers of a text, in order: runs of digits with optional thousands separators
/// (`1,234`) and decimals (`3.5`), a `-` sign when it does not follow a word or `)`; digits
/// glued to a preceding letter (`H2O`, `x2`) are not numbers.
fn number_tokens(text: &str) -> Vec<NumberToken> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        while j < n && b[j].is_ascii_digit() {
            j += 1;
        }
        let mut digits = text[start..j].to_string();
        while b.get(j) == Some(&b',')
            && b.get(j + 1..j + 4)
                .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
            && !b.get(j + 4).is_some_and(u8::is_ascii_digit)
        {
            digits.push_str(&text[j + 1..j + 4]);
            j += 4;
        }
        let mut fractional = false;
        if j + 1 < n && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            let mut k = j + 1;
            while k < n && b[k].is_ascii_digit() {
                fractional |= b[k] != b'0';
                k += 1;
            }
            j = k;
        }
        i = j;
        let glued = start > 0 && (b[start - 1].is_ascii_alphabetic() || b[start - 1] == b'_');
        if glued {
            continue;
        }
        let before = &text[..start];
        let sign_len = if before.ends_with('-') {
            1
        } else if before.ends_with('\u{2212}') {
            '\u{2212}'.len_utf8()
        } else {
            0
        };
        let negative = sign_len > 0
            && !before[..start - sign_len]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == ')' || c == '}');
        let value = if fractional {
            None
        } else {
            digits
                .parse::<i64>()
                .ok()
                .map(|v| if negative { -v } else { v })
        };
        out.push(NumberToken { value });
    }
    out
}

/// The integer answer of a reply (AIME style).
///
/// When the reply has a `\boxed{…}`, the last one decides: its content read as an integer
/// ([`parse_integer`]), or else its only number if it has exactly one integer and nothing else
/// numeric (`\boxed{n = 42}`); otherwise `None` (the boxed answer is not an integer). Without
/// a box, the final integer of the text (decimals such as `3.5` are skipped; `1,234` is one
/// number; digits glued to letters, as in `H2O`, are not numbers).
///
/// ```
/// use orchflow_agent::eval::extract_integer;
/// assert_eq!(extract_integer(r"first \boxed{7}, finally \boxed{ 1{,}000 }"), Some(1000));
/// assert_eq!(extract_integer(r"\boxed{\frac{1}{2}}"), None);
/// assert_eq!(extract_integer("Steps 1 and 2 give -15."), Some(-15));
/// assert_eq!(extract_integer("no numbers"), None);
/// ```
pub fn extract_integer(text: &str) -> Option<i64> {
    if let Some(boxed) = last_boxed(text) {
        if let Some(n) = parse_integer(boxed) {
            return Some(n);
        }
        let tokens = number_tokens(&clean_latex(boxed));
        return match tokens.as_slice() {
            [NumberToken { value: Some(v) }] => Some(*v),
            _ => None,
        };
    }
    number_tokens(text).iter().rev().find_map(|t| t.value)
}

/// Words skipped between "answer"/"option"/"choice" and the letter.
const FILLER_WORDS: &[&str] = &[
    "is",
    "was",
    "would",
    "will",
    "should",
    "must",
    "be",
    "therefore",
    "thus",
    "hence",
    "so",
    "correct",
    "final",
    "right",
    "best",
    "most",
    "likely",
    "probably",
    "the",
    "letter",
    "option",
    "choice",
    "answer",
    "my",
    "our",
    "here",
    "then",
    "to",
    "question",
    "this",
    "that",
    "choose",
    "pick",
    "select",
    "we",
    "boxed",
    "text",
    "textbf",
    "mathrm",
    "mathbf",
];

/// Words after which an upper-case `A` is still a letter, not an article ("A because …").
const CONNECTIVES: &[&str] = &[
    "because", "since", "as", "and", "or", "which", "with", "for", "so", "given", "due", "from",
    "is", "it", "this", "that",
];

/// The option letter of a reply (GPQA style), upper-cased; `letters` is the number of options
/// (`4` for A–D; clamped to 2–26).
///
/// Tried in order, the first that finds a letter wins:
/// 1. the last `\boxed{…}` whose content has exactly one allowed single-letter word
///    (`\boxed{C}`, `\boxed{\text{(c)}}`, `\boxed{C) 6 N}`); a box naming two or more
///    (`\boxed{B/C}`) is a hedge: no letter;
/// 2. the last "answer" phrase followed by a letter ("the answer is (C)", "Answer: C",
///    "final answer: **c**");
/// 3. a reply that starts with the option: its first non-space token is a letter (optionally
///    bracketed or in `**bold**`) followed by `)`, `]`, `:` or `.` (`D) 10^-4 eV`,
///    `D: because…`, `B. It follows…`), or alone on the first line. Not when another line
///    starts with another option (the reply goes through the options one by one), nor when
///    the punctuation is followed by a letter or digit (`A.I.`, `e.g.`, `D:5`);
/// 4. the last "option"/"choice" phrase followed by a letter ("option B is correct");
/// 5. a lone letter ending the reply: a last line such as `C`, `(C)`, `**C.**`, or an
///    upper-case letter at the end of the last line ("so we pick C.").
///
/// A letter found so that is joined to another option letter by `or`, `/`, `|` or `and/or`
/// (`B or C`, `B/C`, `either (B) or (C)`) is a hedge: the reply yields no letter at all.
///
/// A lower-case letter counts only when it cannot be a word: enclosed (`(c)`, `**c**`) or
/// followed by punctuation or the end; an upper-case `A` followed by a lower-case word is read
/// as the article ("Answer: A prime number…") unless that word is a connective ("A because…").
///
/// ```
/// use orchflow_agent::eval::extract_choice;
/// assert_eq!(extract_choice(r"\boxed{B}", 4), Some('B'));
/// assert_eq!(extract_choice("Answer: d", 4), Some('D'));
/// assert_eq!(extract_choice("D) 10^-4 eV", 4), Some('D'));
/// assert_eq!(extract_choice("B. It follows from parity.", 4), Some('B'));
/// assert_eq!(extract_choice("The answer is B or C.", 4), None);
/// assert_eq!(extract_choice("The answer is a prime, so (E) is out.\nE", 4), None);
/// assert_eq!(extract_choice("The answer is a prime number.", 4), None);
/// ```
pub fn extract_choice(text: &str, letters: usize) -> Option<char> {
    let letters = letters.clamp(2, 26);
    let allowed = |c: char| {
        c.is_ascii_alphabetic() && ((c.to_ascii_uppercase() as usize) - ('A' as usize)) < letters
    };
    // A found letter is the answer unless it is one side of a hedge.
    let unless_hedged = |(i, c): (usize, char)| (!hedged(text, i, &allowed)).then_some(c);
    if let Some(boxed) = last_boxed(text) {
        let cleaned = clean_latex(boxed);
        let singles: HashSet<char> = words(&cleaned)
            .filter(|(_, w)| w.len() == 1)
            .filter_map(|(_, w)| w.chars().next())
            .filter(|c| allowed(*c))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        match singles.len() {
            0 => {}
            1 => return singles.into_iter().next(),
            _ => return None,
        }
    }
    let lower = text.to_ascii_lowercase();
    let phrase = |markers: &[&str]| {
        let mut positions: Vec<usize> = markers
            .iter()
            .flat_map(|m| word_positions(&lower, m))
            .collect();
        positions.sort_unstable();
        positions
            .iter()
            .rev()
            .find_map(|&pos| letter_after(text, pos, &allowed))
    };
    if let Some(found) = phrase(&["answer"]) {
        return unless_hedged(found);
    }
    if let Some(found) = leading_option(text, &allowed) {
        return unless_hedged(found);
    }
    if let Some(found) = phrase(&["option", "choice"]) {
        return unless_hedged(found);
    }
    final_lone_letter(text, &allowed).and_then(unless_hedged)
}

/// Characters that may open or close an option letter (`(C)`, `**C**`, `"C"`).
const OPENERS: &[char] = &['(', '[', '{', '*', '_', '"', '\''];
const CLOSERS: &[char] = &[')', ']', '}', '*', '_', '"', '\''];

/// The rest of `s` after a leading alternative word (`or`, `/`, `|`, `and/or`), if it starts
/// with one.
fn after_alternative(s: &str) -> Option<&str> {
    for word in ["and/or", "or"] {
        if s.get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
            && !s[word.len()..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
        {
            return Some(&s[word.len()..]);
        }
    }
    s.strip_prefix(['/', '|'])
}

/// `s` before a trailing alternative word (`or`, `/`, `|`, `and/or`), if it ends with one.
fn before_alternative(s: &str) -> Option<&str> {
    for word in ["and/or", "or"] {
        let Some(at) = s.len().checked_sub(word.len()) else {
            continue;
        };
        if s.get(at..).is_some_and(|w| w.eq_ignore_ascii_case(word))
            && !s[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
        {
            return Some(&s[..at]);
        }
    }
    s.strip_suffix(['/', '|'])
}

/// Whether the option letter at byte `i` of `text` is one side of a hedge: joined to another
/// option letter by `or`, `/`, `|` or `and/or` (`B or C`, `(B) or (C)`, `B/C`).
fn hedged(text: &str, i: usize, allowed: &dyn Fn(char) -> bool) -> bool {
    let is_space_or = |set: &'static [char]| move |c: char| c.is_whitespace() || set.contains(&c);
    // Forward: "B or C".
    let after = text
        .get(i + 1..)
        .unwrap_or("")
        .trim_start_matches(is_space_or(CLOSERS));
    if let Some(rest) = after_alternative(after) {
        let rest = rest.trim_start_matches(is_space_or(OPENERS));
        let j = text.len() - rest.len();
        if rest
            .chars()
            .next()
            .is_some_and(|c| allowed(c) && qualifies(text, j, c))
        {
            return true;
        }
    }
    // Backward: "either B or C", seen from C.
    let before = text
        .get(..i)
        .unwrap_or("")
        .trim_end_matches(is_space_or(OPENERS));
    if let Some(head) = before_alternative(before) {
        let head = head.trim_end_matches(is_space_or(CLOSERS));
        let mut back = head.chars().rev();
        if let Some(c) = back.next()
            && allowed(c)
            && !back.next().is_some_and(char::is_alphanumeric)
        {
            return true;
        }
    }
    false
}

/// The option a line starts with (see [`extract_choice`], rule 3): the letter's byte offset in
/// the line and the letter, upper-cased.
fn option_marker(line: &str, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
    let body = line.trim_start().trim_start_matches(['*', '_']);
    let body = body.strip_prefix(['(', '[']).unwrap_or(body);
    let at = line.len() - body.len();
    let mut chars = body.chars();
    let c = chars.next().filter(|c| allowed(*c))?;
    let rest = chars.as_str();
    let marks = match rest.strip_prefix([')', ']', ':', '.']) {
        // `B)`, `B:`, `B.`: not glued to a letter or digit (`A.I.`, `e.g.`, `D:5`).
        Some(after) => !after
            .trim_start_matches(['*', '_', ')', ']', ':', '.'])
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric),
        // Alone on the line (`B`, `**B**`).
        None => rest.trim_start_matches(['*', '_']).trim().is_empty(),
    };
    marks.then(|| (at, c.to_ascii_uppercase()))
}

/// The option a reply starts with, unless another line starts with another option (see
/// [`extract_choice`], rule 3): its byte position in `text` and the letter.
fn leading_option(text: &str, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
    let start = text.len() - text.trim_start().len();
    let mut lines = text[start..].lines();
    let (at, c) = option_marker(lines.next()?, allowed)?;
    let enumeration = lines.any(|line| option_marker(line, allowed).is_some_and(|(_, d)| d != c));
    (!enumeration).then_some((start + at, c))
}

/// The words (ASCII-alphabetic runs) of a text with their byte positions.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

/// Byte positions of `word` as a whole word (lower-case text).
fn word_positions<'a>(lower: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    lower.match_indices(word).filter_map(move |(p, _)| {
        let before_ok = !lower[..p]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric());
        let after_ok = !lower[p + word.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric());
        (before_ok && after_ok).then_some(p)
    })
}

/// The letter right after a marker word at `pos` (filler words and punctuation skipped, within
/// 80 bytes), if it qualifies as an option letter: its byte position in `text` and the letter,
/// upper-cased.
fn letter_after(text: &str, pos: usize, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
    let end = (pos + 80).min(text.len());
    let end = (end..=text.len()).find(|&e| text.is_char_boundary(e))?;
    let window = &text[pos..end];
    for (i, w) in words(window) {
        if i == 0 {
            continue; // the marker itself
        }
        let gap = &window[..i];
        // Stop at a digit or a sentence end between the marker and this word.
        let last_gap = gap[gap
            .rfind(|c: char| c.is_ascii_alphabetic())
            .map_or(0, |p| p + 1)..]
            .to_string();
        if last_gap.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
        let lw = w.to_ascii_lowercase();
        if w.len() > 1 {
            if FILLER_WORDS.contains(&lw.as_str()) {
                continue;
            }
            return None;
        }
        let c = w.chars().next()?;
        if !allowed(c) {
            return None;
        }
        return qualifies(window, i, c).then(|| (pos + i, c.to_ascii_uppercase()));
    }
    None
}

/// Whether the single letter `c` at byte `i` of `text` reads as an option letter (see
/// [`extract_choice`]).
fn qualifies(text: &str, i: usize, c: char) -> bool {
    let before = text[..i].chars().next_back();
    let rest = &text[i + 1..];
    let after = rest.chars().next();
    let enclosed = matches!(before, Some('(' | '[' | '*' | '{' | '"' | '\''));
    match after {
        None => true,
        Some(a) if a.is_alphanumeric() => false,
        Some(a) if a.is_whitespace() => {
            if enclosed || rest.trim_start().is_empty() || rest.starts_with(['\n', '\r']) {
                return true;
            }
            if !c.is_ascii_uppercase() {
                return false;
            }
            if c != 'A' {
                return true;
            }
            let next_word = rest
                .trim_start()
                .split(|ch: char| !ch.is_alphabetic())
                .next()
                .unwrap_or("");
            let article_like = next_word.chars().next().is_some_and(|f| f.is_lowercase())
                && !CONNECTIVES.contains(&next_word);
            !article_like
        }
        Some(_) => true,
    }
}

/// A lone letter ending the reply (see [`extract_choice`], rule 5): its byte position in `text`
/// and the letter, upper-cased.
fn final_lone_letter(text: &str, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
    let last_line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    // `last_line` is a slice of `text`: its offset there.
    let offset = (last_line.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    let stripped: String = last_line
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '*' | '_' | '#' | '`' | '(' | ')' | '[' | ']' | '.' | ':' | '!'
            )
        })
        .collect();
    let stripped = stripped.trim();
    let mut cs = stripped.chars();
    if let (Some(c), None) = (cs.next(), cs.next())
        && allowed(c)
    {
        let at = last_line.find(c).unwrap_or(0);
        return Some((offset + at, c.to_ascii_uppercase()));
    }
    // An upper-case letter as the line's last word ("so we pick C."): being last, an `A`
    // cannot be the article.
    let (i, w) = words(last_line).last()?;
    let c = w.chars().next()?;
    let only_punctuation_after = last_line[i + w.len()..]
        .chars()
        .all(|ch| !ch.is_alphanumeric());
    (w.len() == 1 && c.is_ascii_uppercase() && allowed(c) && only_punctuation_after)
        .then_some((offset + i, c))
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

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

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

fn parse_results(text: &str, path: &Path) -> Vec<EvalRecord> {
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
fn open_results(path: &Path) -> Result<(std::fs::File, Vec<EvalRecord>), EvalError> {
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

// ---------------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------------

/// How [`run_eval`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOptions {
    /// The most items solved at once (0 counts as 1). Default 4.
    pub concurrency: usize,
    /// The results file (JSONL, one [`EvalRecord`] per line). Each finished item is appended
    /// and flushed at once; when the file exists, the items whose ids it holds are not asked
    /// again and their records are reused. `None`: no file, no resume. Default `None`.
    pub results_path: Option<PathBuf>,
    /// Show a progress bar on stderr (it stays hidden anyway when stderr is not a terminal).
    /// Default `true`.
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            concurrency: 4,
            results_path: None,
            progress: true,
        }
    }
}

/// Runs an eval: for each item not already in the results file, awaits `solve(item)`, scores
/// the trajectory's answer, and appends the [`EvalRecord`] to the results file as soon as it is
/// known; at most `options.concurrency` solves are in flight at once (they run concurrently on
/// the calling task). Returns the report over all items (records resumed from the file
/// included, in item order; records in the file for ids not among `items` are ignored).
///
/// `solve` decides how trajectories are made (the `solver` module's `Solver`, a script…); it
/// cannot fail: a failed run is a trajectory with [`Outcome::Failed`].
///
/// Fails with [`EvalError::DuplicateId`] or [`EvalError::InvalidItem`] before asking anything,
/// and with [`EvalError::Io`] when the results file cannot be read or written (then the
/// in-flight solves are dropped; what was written stays and is resumed next time).
///
/// ```
/// use orchflow_agent::eval::{parse_items, run_eval, EvalOptions};
/// use orchflow_agent::trajectory::{Outcome, Trajectory};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let items = parse_items(r#"{"id": "a", "question": "2+2?", "answer": "4", "kind": "integer"}"#)
///     .unwrap();
/// let solve = |item: orchflow_agent::eval::EvalItem| async move {
///     let mut t = Trajectory::new(item.question);
///     t.answer = Some(r"\boxed{4}".into());
///     t.outcome = Outcome::Answered;
///     t
/// };
/// let options = EvalOptions { progress: false, ..EvalOptions::default() };
/// let report = run_eval(items, solve, &options).await.unwrap();
/// assert_eq!((report.total, report.correct), (1, 1));
/// # });
/// ```
pub async fn run_eval<F, Fut>(
    items: Vec<EvalItem>,
    solve: F,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError>
where
    F: Fn(EvalItem) -> Fut,
    Fut: Future<Output = Trajectory>,
{
    check_items(&items)?;
    let (mut file, previous) = match &options.results_path {
        Some(path) => {
            let (file, records) = open_results(path)?;
            (Some((file, path.clone())), records)
        }
        None => (None, Vec::new()),
    };
    let wanted: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut records: HashMap<String, EvalRecord> = previous
        .into_iter()
        .filter(|r| wanted.contains(r.id.as_str()))
        .map(|r| (r.id.clone(), r))
        .collect();
    let resumed = records.len();
    let pending: Vec<EvalItem> = items
        .iter()
        .filter(|i| !records.contains_key(&i.id))
        .cloned()
        .collect();
    if resumed > 0 {
        tracing::info!(
            resumed,
            pending = pending.len(),
            "resuming: {resumed} item(s) already in the results file"
        );
    }

    let bar = progress_bar(items.len(), options.progress);
    bar.set_position(resumed as u64);
    let mut correct_so_far = records.values().filter(|r| r.correct).count();
    let mut done_so_far = resumed;
    bar.set_message(accuracy_message(correct_so_far, done_so_far));

    let solve = &solve;
    let mut finished = futures_util::stream::iter(pending)
        .map(|item| async move {
            let started = Instant::now();
            let trajectory = solve(item.clone()).await;
            EvalRecord::new(&item, trajectory, started.elapsed())
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some(record) = finished.next().await {
        if let Some((file, path)) = &mut file {
            let mut line = serde_json::to_string(&record).map_err(|e| EvalError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .map_err(io_error(path))?;
        }
        tracing::info!(
            id = %record.id,
            correct = record.correct,
            predicted = ?record.predicted,
            expected = %record.expected,
            steps = record.steps,
            outcome = %record.outcome,
            "eval item finished"
        );
        done_so_far += 1;
        correct_so_far += usize::from(record.correct);
        bar.inc(1);
        bar.set_message(accuracy_message(correct_so_far, done_so_far));
        records.insert(record.id.clone(), record);
    }
    drop(finished);
    bar.finish_and_clear();

    let ordered: Vec<EvalRecord> = items.iter().filter_map(|i| records.remove(&i.id)).collect();
    let mut report = EvalReport::from_records(&ordered);
    report.resumed = resumed;
    Ok(report)
}

fn progress_bar(len: usize, wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn accuracy_message(correct: usize, done: usize) -> String {
    if done == 0 {
        String::new()
    } else {
        format!(
            "correct {correct}/{done} ({:.1}%)",
            100.0 * correct as f64 / done as f64
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// Accuracy of one answer kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// Items of this kind.
    pub total: usize,
    /// Of which correct.
    pub correct: usize,
    /// `correct / total` (0 when there are none).
    pub accuracy: f64,
}

/// What an eval run measured. Means are over all items (0 when there are none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Items scored.
    pub total: usize,
    /// Items answered correctly.
    pub correct: usize,
    /// `correct / total`.
    pub accuracy: f64,
    /// Items from which an answer could be extracted.
    pub answered: usize,
    /// Items whose results came from an earlier run (the results file), not asked again.
    pub resumed: usize,
    /// Accuracy per answer kind (`integer`, `choice`).
    pub by_kind: BTreeMap<String, KindReport>,
    /// Items per outcome ([`outcome_kind`]).
    pub outcomes: BTreeMap<String, usize>,
    /// Items per failure kind ([`FailureKind::as_str`]); correct items are not counted.
    pub failures: BTreeMap<String, usize>,
    /// Malformed planner outputs, over all items.
    pub malformed_decisions: usize,
    /// Items with at least one malformed planner output.
    pub items_with_malformed: usize,
    /// Tool calls per tool, over all items.
    pub tool_calls: BTreeMap<String, usize>,
    /// Items that called each tool at least once.
    pub items_using_tool: BTreeMap<String, usize>,
    /// Failed tool calls per error kind, over all items.
    pub tool_errors: BTreeMap<String, usize>,
    /// Mean steps per item.
    pub mean_steps: f64,
    /// Mean trajectory duration, in milliseconds.
    pub mean_duration_ms: f64,
    /// Tokens used in all.
    pub usage: Usage,
    /// Mean tokens (prompt and completion) per item.
    pub mean_tokens: f64,
}

impl EvalReport {
    /// The report over these records (`resumed` is left at 0; [`run_eval`] sets it).
    pub fn from_records(records: &[EvalRecord]) -> Self {
        let total = records.len();
        let mean = |sum: f64| if total == 0 { 0.0 } else { sum / total as f64 };
        let correct = records.iter().filter(|r| r.correct).count();
        let mut by_kind: BTreeMap<String, KindReport> = BTreeMap::new();
        let mut outcomes = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let mut tool_calls = BTreeMap::new();
        let mut items_using_tool = BTreeMap::new();
        let mut tool_errors = BTreeMap::new();
        let mut usage = Usage::default();
        for r in records {
            let k = by_kind
                .entry(r.kind.as_str().to_string())
                .or_insert(KindReport {
                    total: 0,
                    correct: 0,
                    accuracy: 0.0,
                });
            k.total += 1;
            k.correct += usize::from(r.correct);
            *outcomes.entry(r.outcome.clone()).or_insert(0) += 1;
            if let Some(f) = r.failure {
                *failures.entry(f.as_str().to_string()).or_insert(0) += 1;
            }
            for (tool, n) in &r.tool_calls {
                *tool_calls.entry(tool.clone()).or_insert(0) += n;
                if *n > 0 {
                    *items_using_tool.entry(tool.clone()).or_insert(0) += 1;
                }
            }
            for (kind, n) in &r.tool_errors {
                *tool_errors.entry(kind.clone()).or_insert(0) += n;
            }
            usage += r.usage;
        }
        for k in by_kind.values_mut() {
            k.accuracy = k.correct as f64 / k.total as f64;
        }
        EvalReport {
            total,
            correct,
            accuracy: mean(correct as f64),
            answered: records.iter().filter(|r| r.predicted.is_some()).count(),
            resumed: 0,
            by_kind,
            outcomes,
            failures,
            malformed_decisions: records.iter().map(|r| r.malformed_decisions).sum(),
            items_with_malformed: records.iter().filter(|r| r.malformed_decisions > 0).count(),
            tool_calls,
            items_using_tool,
            tool_errors,
            mean_steps: mean(records.iter().map(|r| r.steps as f64).sum()),
            mean_duration_ms: mean(records.iter().map(|r| r.duration_ms as f64).sum()),
            usage,
            mean_tokens: mean(usage.total() as f64),
        }
    }

    /// The report as Markdown: a summary table, then tables per kind, outcome, failure, tool
    /// and tool error.
    ///
    /// ```
    /// let md = orchflow_agent::eval::EvalReport::from_records(&[]).to_markdown();
    /// assert!(md.contains("| accuracy | 0.0% (0/0) |"));
    /// ```
    pub fn to_markdown(&self) -> String {
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let mut md = String::from("# Eval report\n\n| metric | value |\n|---|---|\n");
        let rows = [
            (
                "items",
                if self.resumed > 0 {
                    format!("{} ({} resumed)", self.total, self.resumed)
                } else {
                    self.total.to_string()
                },
            ),
            (
                "accuracy",
                format!("{} ({}/{})", pct(self.accuracy), self.correct, self.total),
            ),
            ("answered", format!("{}/{}", self.answered, self.total)),
            ("mean steps", format!("{:.2}", self.mean_steps)),
            (
                "mean duration",
                format!("{:.2} s", self.mean_duration_ms / 1000.0),
            ),
            (
                "tokens",
                format!(
                    "{} (prompt {}, completion {}; {:.1} per item)",
                    self.usage.total(),
                    self.usage.prompt_tokens,
                    self.usage.completion_tokens,
                    self.mean_tokens
                ),
            ),
            (
                "malformed decisions",
                format!(
                    "{} (in {} items)",
                    self.malformed_decisions, self.items_with_malformed
                ),
            ),
        ];
        for (k, v) in rows {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        if !self.by_kind.is_empty() {
            md.push_str(
                "\n## By kind\n\n| kind | items | correct | accuracy |\n|---|---:|---:|---:|\n",
            );
            for (kind, k) in &self.by_kind {
                md.push_str(&format!(
                    "| {kind} | {} | {} | {} |\n",
                    k.total,
                    k.correct,
                    pct(k.accuracy)
                ));
            }
        }
        let mut table = |title: &str, head: &str, map: &BTreeMap<String, usize>| {
            if map.is_empty() {
                return;
            }
            md.push_str(&format!("\n## {title}\n\n| {head} | count |\n|---|---:|\n"));
            for (k, v) in map {
                md.push_str(&format!("| {k} | {v} |\n"));
            }
        };
        table("Outcomes", "outcome", &self.outcomes);
        table("Failures", "failure", &self.failures);
        table("Tool errors", "error kind", &self.tool_errors);
        if !self.tool_calls.is_empty() {
            md.push_str("\n## Tool calls\n\n| tool | calls | items using it |\n|---|---:|---:|\n");
            for (tool, n) in &self.tool_calls {
                let items = self.items_using_tool.get(tool).copied().unwrap_or(0);
                md.push_str(&format!("| {tool} | {n} | {items} |\n"));
            }
        }
        md
    }

    /// Writes `report.json` and `report.md` into `dir` (created if needed); returns their
    /// paths.
    ///
    /// Fails with [`EvalError::Io`] when the directory or a file cannot be written.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf), EvalError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let json_path = dir.join("report.json");
        let md_path = dir.join("report.md");
        let json = serde_json::to_string_pretty(self).map_err(|e| EvalError::Io {
            path: json_path.clone(),
            source: e.into(),
        })?;
        std::fs::write(&json_path, json + "\n").map_err(io_error(&json_path))?;
        std::fs::write(&md_path, self.to_markdown()).map_err(io_error(&md_path))?;
        Ok((json_path, md_path))
    }
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
