//! Reading the answer out of a reply: the last `\\boxed{…}`, the final integer, and the
//! forms a multiple-choice answer takes (see the [module docs](super)).

use super::*;

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
pub(super) fn next_box_command(text: &str, from: usize) -> Option<(usize, usize)> {
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
pub(super) fn clean_latex(s: &str) -> String {
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
pub(super) struct NumberToken {
    pub(super) value: Option<i64>,
}

/// The numbers of a text, in order: runs of digits with optional thousands separators
/// (`1,234`) and decimals (`3.5`), a `-` sign when it does not follow a word or `)`; digits
/// glued to a preceding letter (`H2O`, `x2`) are not numbers.
pub(super) fn number_tokens(text: &str) -> Vec<NumberToken> {
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
pub(super) const FILLER_WORDS: &[&str] = &[
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
pub(super) const CONNECTIVES: &[&str] = &[
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
pub(super) const OPENERS: &[char] = &['(', '[', '{', '*', '_', '"', '\''];
pub(super) const CLOSERS: &[char] = &[')', ']', '}', '*', '_', '"', '\''];

/// The rest of `s` after a leading alternative word (`or`, `/`, `|`, `and/or`), if it starts
/// with one.
pub(super) fn after_alternative(s: &str) -> Option<&str> {
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
pub(super) fn before_alternative(s: &str) -> Option<&str> {
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
pub(super) fn hedged(text: &str, i: usize, allowed: &dyn Fn(char) -> bool) -> bool {
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
pub(super) fn option_marker(line: &str, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
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
pub(super) fn leading_option(text: &str, allowed: &dyn Fn(char) -> bool) -> Option<(usize, char)> {
    let start = text.len() - text.trim_start().len();
    let mut lines = text[start..].lines();
    let (at, c) = option_marker(lines.next()?, allowed)?;
    let enumeration = lines.any(|line| option_marker(line, allowed).is_some_and(|(_, d)| d != c));
    (!enumeration).then_some((start + at, c))
}

/// The words (ASCII-alphabetic runs) of a text with their byte positions.
pub(super) fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
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
pub(super) fn word_positions<'a>(
    lower: &'a str,
    word: &'a str,
) -> impl Iterator<Item = usize> + 'a {
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
pub(super) fn letter_after(
    text: &str,
    pos: usize,
    allowed: &dyn Fn(char) -> bool,
) -> Option<(usize, char)> {
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
pub(super) fn qualifies(text: &str, i: usize, c: char) -> bool {
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
pub(super) fn final_lone_letter(
    text: &str,
    allowed: &dyn Fn(char) -> bool,
) -> Option<(usize, char)> {
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
