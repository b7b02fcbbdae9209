//! An offline stand-in for a model, so the solver runs with no network and no model.
//!
//! [`OfflineModel`] is **not** a language model: it is a small, deterministic, rule-based
//! [`LlmClient`] that reads the solver's prompts and answers in the same JSON formats a model
//! would. Its decisions say so (`"[offline rule-based planner] …"`). Everything around it is
//! real: the executor, the Python sandbox and the BM25 search run as they would with a model.
//!
//! Its rules: a question with an arithmetic expression (or a gcd, a remainder, a binomial
//! coefficient, a factorial) is computed with the `code` tool; any other question is looked up
//! with the `search` tool; the answer is then read off the tool's output.

use crate::llm::{ChatRequest, ChatResponse, LlmClient, LlmError, LlmFuture, Role, Usage};
use crate::tools::Tool;
use std::sync::Arc;

/// The offline tools: the Python sandbox (`code`) and the built-in local search (`search`).
pub fn offline_tools() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(crate::tools::code::PythonSandbox::new()),
        Arc::new(crate::tools::search::LocalSearch::builtin()),
    ]
}

/// A deterministic, rule-based stand-in for a model (see the [module docs](self)).
///
/// ```
/// use orchflow_agent::offline::OfflineModel;
/// use orchflow_agent::{ChatRequest, LlmClient, Message};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let m = OfflineModel::new();
/// let r = m.chat(&ChatRequest::new("offline", vec![Message::user("hello")])).await.unwrap();
/// assert!(r.content.contains("offline"));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct OfflineModel {
    _private: (),
}

impl OfflineModel {
    /// The offline model.
    pub fn new() -> Self {
        OfflineModel::default()
    }
}

/// What the prompt's memory says, as far as the rules need it.
#[derive(Debug, Default)]
struct Seen {
    question: String,
    /// (action, result or error text, ok) of each step with a tool call, in order.
    calls: Vec<(String, String, bool)>,
    steps: usize,
}

fn parse_prompt(prompt: &str) -> Seen {
    let mut seen = Seen::default();
    let question = prompt
        .strip_prefix("Question: ")
        .and_then(|rest| rest.split("\n\nMemory").next())
        .unwrap_or(prompt);
    seen.question = question.trim().to_string();
    let mut action = String::new();
    let mut in_result = false;
    for line in prompt.lines() {
        if line.starts_with("Step ") && line.ends_with(':') {
            seen.steps += 1;
            in_result = false;
        } else if let Some(a) = line.strip_prefix("  action: ") {
            action = a.trim().to_string();
            in_result = false;
        } else if let Some(r) = line.strip_prefix("  result: ") {
            seen.calls.push((action.clone(), r.to_string(), true));
            in_result = true;
        } else if let Some(e) = line.strip_prefix("  tool error ") {
            seen.calls.push((action.clone(), e.to_string(), false));
            in_result = false;
        } else if let (true, Some(more)) = (in_result, line.strip_prefix("    ")) {
            // A multi-line tool output continues the last result, indented.
            if let Some(last) = seen.calls.last_mut() {
                last.1.push('\n');
                last.1.push_str(more);
            }
        } else {
            in_result = false;
        }
    }
    seen
}

/// The options of a multiple-choice question: `(A) text` lines.
fn options(question: &str) -> Vec<(char, String)> {
    question
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix('(')?;
            let mut chars = rest.chars();
            let letter = chars.next().filter(char::is_ascii_uppercase)?;
            let text = chars.as_str().strip_prefix(')')?.trim();
            Some((letter, text.to_string()))
        })
        .collect()
}

/// The option whose words occur most often in `text` (none if no word of any option does).
fn best_option(question: &str, text: &str) -> Option<char> {
    let text = text.to_lowercase();
    let tokens: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric() && c != '.')
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| !t.is_empty())
        .collect();
    options(question)
        .into_iter()
        .map(|(letter, option)| {
            let option = option.to_lowercase();
            let hits: usize = option
                .split(|c: char| !c.is_alphanumeric() && c != '.')
                .filter(|w| !w.is_empty())
                .map(|w| tokens.iter().filter(|t| **t == w).count())
                .sum();
            (letter, hits)
        })
        .filter(|(_, hits)| *hits > 0)
        .max_by_key(|(letter, hits)| (*hits, std::cmp::Reverse(*letter)))
        .map(|(letter, _)| letter)
}

/// The question without its options.
fn stem(question: &str) -> String {
    question
        .lines()
        .take_while(|l| !l.trim_start().starts_with('('))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Python program computing the question's arithmetic, if it has any.
fn program_for(question: &str) -> Option<String> {
    let q = stem(question).to_lowercase();
    let numbers: Vec<String> = q
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let between = |from: &str, to: &str| {
        let start = q.find(from)? + from.len();
        let end = start + q[start..].find(to)?;
        operand(&q[start..end])
    };
    let expr = if q.contains("gcd") || q.contains("greatest common divisor") {
        (numbers.len() >= 2).then(|| format!("math.gcd({}, {})", numbers[0], numbers[1]))
    } else if q.contains("remainder") {
        let dividend =
            between("remainder when ", " is divided by").or_else(|| numbers.first().cloned())?;
        let divisor = q.split("divided by").nth(1).and_then(operand)?;
        Some(format!("({dividend}) % ({divisor})"))
    } else if let Some(at) = q.find("last ") {
        let digits = match q[at + 5..].split_whitespace().next()? {
            "two" | "2" => 2,
            "three" | "3" => 3,
            "four" | "4" => 4,
            _ => 1,
        };
        let of = q[at..].split(" of ").nth(1).and_then(operand)?;
        Some(format!("({of}) % 10**{digits}"))
    } else if (q.contains("choose") || q.contains("ways to choose")) && numbers.len() >= 2 {
        let (n, k) = if q.contains("from") || q.contains("out of") {
            (&numbers[1], &numbers[0])
        } else {
            (&numbers[0], &numbers[1])
        };
        Some(format!("math.comb({n}, {k})"))
    } else if q.contains("factorial") && !numbers.is_empty() {
        Some(format!("math.factorial({})", numbers[0]))
    } else {
        arithmetic(&q)
    }?;
    Some(format!(
        "import math\nvalue = {expr}\nif isinstance(value, float) and value.is_integer():\n    value = int(value)\nprint(value)\n"
    ))
}

/// An arithmetic expression in `text`, else its first number.
fn operand(text: &str) -> Option<String> {
    arithmetic(text).or_else(|| {
        text.split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .map(str::to_string)
    })
}

/// The longest run of the text that reads as arithmetic (digits, operators, parentheses): it
/// starts with a number, `(` or `-`, ends with a number or `)`, and has an operator.
fn arithmetic(text: &str) -> Option<String> {
    let normalised = text
        .replace('×', "*")
        .replace('÷', "/")
        .replace('^', "**")
        .replace('−', "-")
        .replace(" mod ", " % ");
    let allowed = |c: char| c.is_ascii_digit() || " +-*/%().".contains(c);
    let mut best = String::new();
    let mut current = String::new();
    for c in normalised.chars().chain(std::iter::once('\n')) {
        if allowed(c) {
            current.push(c);
            continue;
        }
        let candidate = current.trim().trim_end_matches(['.', ' ']).to_string();
        current.clear();
        let starts = candidate.starts_with(|c: char| c.is_ascii_digit() || c == '(' || c == '-');
        let ends = candidate.ends_with(|c: char| c.is_ascii_digit() || c == ')');
        let has_op = candidate
            .trim_start_matches(['-', '('])
            .contains(['+', '-', '*', '/', '%']);
        let balanced = candidate.matches('(').count() == candidate.matches(')').count();
        if starts && ends && balanced && has_op && candidate.len() > best.len() {
            best = candidate;
        }
    }
    (!best.is_empty()).then_some(best)
}

/// The answer a tool output gives: the last line of a program's output, or for a search the
/// matching option of a multiple-choice question, else the first sentence of the first hit.
fn answer_from(question: &str, action: &str, output: &str) -> String {
    if action == "code" {
        return output
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("[stderr]"))
            .unwrap_or("")
            .to_string();
    }
    if !options(question).is_empty() {
        return best_option(question, output).map_or_else(|| "unknown".to_string(), String::from);
    }
    // Search output: hits are "N. Title (url)" lines, each followed by its indented text.
    let is_title = |l: &str| {
        l.split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let text = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_title(l) && !l.starts_with("Answer:"))
        .unwrap_or("");
    // The sentence of the first hit that shares the most words with the question.
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 3)
            .map(str::to_string)
            .collect()
    };
    let asked = words(question);
    text.split_inclusive(". ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .max_by_key(|(i, s)| {
            let shared = words(s).iter().filter(|w| asked.contains(w)).count();
            (shared, std::cmp::Reverse(*i))
        })
        .map_or_else(String::new, |(_, s)| s.to_string())
}

fn decision(thought: &str, action: &str, input: &str) -> String {
    serde_json::json!({
        "thought": format!("[offline rule-based planner] {thought}"),
        "action": action,
        "action_input": input,
    })
    .to_string()
}

fn plan(prompt: &str) -> String {
    let seen = parse_prompt(prompt);
    match seen.calls.last() {
        Some((action, output, true)) => {
            let answer = answer_from(&seen.question, action, output);
            decision(
                &format!("the {action} tool's output answers the question"),
                "answer",
                &answer,
            )
        }
        Some((action, _, false)) if action == "code" => decision(
            "the program failed; looking the question up instead",
            "search",
            &stem(&seen.question),
        ),
        Some(_) => decision(
            "the tools gave nothing usable; I cannot answer better",
            "answer",
            "unknown",
        ),
        None => match program_for(&seen.question) {
            Some(code) => decision("the question is arithmetic: compute it", "code", &code),
            None => decision(
                "the question needs facts: search the local corpus",
                "search",
                &stem(&seen.question),
            ),
        },
    }
}

fn verify(prompt: &str) -> String {
    let seen = parse_prompt(prompt);
    let ok = seen.calls.iter().any(|c| c.2);
    serde_json::json!({
        "sufficient": ok,
        "reason": if ok {
            "[offline rule-based verifier] a tool produced an output"
        } else {
            "[offline rule-based verifier] no tool output yet"
        },
    })
    .to_string()
}

fn final_answer(prompt: &str) -> String {
    let seen = parse_prompt(prompt);
    let answer = seen
        .calls
        .iter()
        .rev()
        .find(|c| c.2)
        .map(|(a, o, _)| answer_from(&seen.question, a, o))
        .unwrap_or_else(|| "unknown".to_string());
    serde_json::json!({ "answer": answer }).to_string()
}

impl LlmClient for OfflineModel {
    fn chat<'a>(&'a self, request: &'a ChatRequest) -> LlmFuture<'a, ChatResponse> {
        Box::pin(async move {
            let prompt = request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or("");
            let title = request
                .schema
                .as_ref()
                .and_then(|s| s.get("title"))
                .and_then(|t| t.as_str())
                .unwrap_or("");
            let content = match title {
                "Decision" => plan(prompt),
                "VerdictReply" => verify(prompt),
                "FinalAnswer" => final_answer(prompt),
                _ => "[offline rule-based model] I only answer the solver's prompts.".to_string(),
            };
            let words = |s: &str| u64::try_from(s.split_whitespace().count()).unwrap_or(0);
            Ok::<_, LlmError>(ChatResponse {
                usage: Usage {
                    prompt_tokens: words(prompt),
                    completion_tokens: words(&content),
                },
                content,
                model: "offline-rule-based".to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_found_in_a_question() {
        assert_eq!(
            arithmetic("What is 12 * 12 + 1?").as_deref(),
            Some("12 * 12 + 1")
        );
        assert_eq!(arithmetic("Compute 2^10.").as_deref(), Some("2**10"));
        assert_eq!(
            arithmetic("Who proved Fermat's last theorem in 1994?"),
            None
        );
        assert_eq!(
            arithmetic("(3 + 4) × 5 = ?").as_deref(),
            Some("(3 + 4) * 5")
        );
        assert_eq!(arithmetic("x^2 + 1"), None, "no dangling operator");
    }

    #[test]
    fn programs_for_named_operations() {
        let p = program_for("What is the gcd of 84 and 36?").unwrap();
        assert!(p.contains("math.gcd(84, 36)"), "{p}");
        let p = program_for("In how many ways can you choose 3 people from 10?").unwrap();
        assert!(p.contains("math.comb(10, 3)"), "{p}");
        let p = program_for("What is the remainder when 2024 is divided by 7?").unwrap();
        assert!(p.contains("(2024) % (7)"), "{p}");
        let p = program_for("What is the remainder when 3^100 is divided by 13?").unwrap();
        assert!(p.contains("(3**100) % (13)"), "{p}");
        let p = program_for("What are the last three digits of 7^2024?").unwrap();
        assert!(p.contains("(7**2024) % 10**3"), "{p}");
    }

    #[test]
    fn the_planner_searches_then_answers_from_the_hit() {
        let first =
            plan("Question: What is the speed of light?\n\nMemory so far:\n(nothing yet)\n");
        assert!(first.contains("\"search\""), "{first}");
        let second = plan(
            "Question: What is the speed of light?\n\nMemory so far:\nStep 1:\n  thought: x\n  \
             action: search\n  action_input: speed of light\n  result: 1. Light (local:light)\n    \
                Light travels at 299792458 metres per second in vacuum. It is a constant.\n\
             Steps left: 3",
        );
        assert!(second.contains("\"answer\""), "{second}");
        assert!(second.contains("299792458"), "{second}");
    }
}

#[cfg(test)]
mod choice_tests {
    use super::*;

    #[test]
    fn a_choice_is_the_option_the_hit_names() {
        let q = "Which gas makes up most of dry air?\n(A) Oxygen\n(B) Carbon dioxide\n(C) Nitrogen";
        assert_eq!(stem(q), "Which gas makes up most of dry air?");
        assert_eq!(options(q).len(), 3);
        assert_eq!(
            best_option(
                q,
                "Dry air is about 78% nitrogen and 21% oxygen by volume; nitrogen dominates."
            ),
            Some('C')
        );
        assert_eq!(best_option(q, "nothing relevant"), None);
    }
}
