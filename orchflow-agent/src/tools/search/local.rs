//! Offline BM25 search over a small corpus.

use super::{
    DEFAULT_MAX_RESULTS, SearchHit, TOOL_NAME, format_hits, hits_data, input_schema, parse_query,
};
use crate::tools::{Tool, ToolFuture, ToolOutput};
use bm25::{Document, SearchEngine, SearchEngineBuilder, Tokenizer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in corpus: short notes on mathematics, physics, chemistry and biology written for
/// this project, one JSON object per line.
const BUILTIN_CORPUS: &str = include_str!("../../../data/search_corpus.jsonl");

/// Words a passage longer than this is split at (in whitespace-separated words).
const MAX_PASSAGE_WORDS: usize = 160;

/// Common English words the tokenizer drops.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "because", "been", "before", "being", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no",
    "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own",
    "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "you", "your",
];

/// The tokenizer [`LocalSearch`] indexes and queries with: lowercase, split on every character
/// that is not alphanumeric, drop common English stop words and single letters (digits stay),
/// and strip plural endings (`primes` → `prime`, `boxes` → `box`, `theories` → `theory`).
///
/// ```
/// use orchflow_agent::tools::search::SearchTokenizer;
/// assert_eq!(
///     SearchTokenizer.tokens("The sum of the Primes below 100, i.e. 1060!"),
///     ["sum", "prime", "below", "100", "1060"]
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchTokenizer;

impl SearchTokenizer {
    /// The tokens of `text`, in order.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| {
                let single_letter =
                    w.chars().count() == 1 && !w.chars().all(|c| c.is_ascii_digit());
                !single_letter && !STOP_WORDS.contains(&w.as_str())
            })
            .map(|w| stem(&w))
            .collect()
    }
}

impl Tokenizer for SearchTokenizer {
    fn tokenize(&self, input_text: &str) -> Vec<String> {
        self.tokens(input_text)
    }
}

/// A trivial plural stemmer: `-ies` → `-y`, `-(s|x|z|ch|sh)es` → drop `es`, `-s` → drop `s`
/// (but not `-ss`, `-us`, `-is`), only for words of four letters or more.
fn stem(word: &str) -> String {
    if word.chars().count() < 4 || !word.is_ascii() {
        return word.to_string();
    }
    if let Some(base) = word.strip_suffix("ies")
        && base.len() >= 2
    {
        return format!("{base}y");
    }
    if let Some(base) = word.strip_suffix("es")
        && ["s", "x", "z", "ch", "sh"]
            .iter()
            .any(|e| base.ends_with(e))
        && base.len() >= 3
    {
        return base.to_string();
    }
    if word.ends_with('s') && !["ss", "us", "is"].iter().any(|e| word.ends_with(e)) {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

/// One document of a [`LocalSearch`] corpus. In a JSONL corpus file each line is one document:
/// `{"id"?: string, "title": string, "text": string, "url"?: string}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusDocument {
    /// A stable identifier (defaults to the line number or the file name).
    #[serde(default)]
    pub id: String,
    /// The title (indexed with the text).
    #[serde(default)]
    pub title: String,
    /// The text.
    pub text: String,
    /// Where the document came from; hits show `local:<id>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl CorpusDocument {
    /// A document from its parts.
    pub fn new(id: impl Into<String>, title: impl Into<String>, text: impl Into<String>) -> Self {
        CorpusDocument {
            id: id.into(),
            title: title.into(),
            text: text.into(),
            url: None,
        }
    }
}

/// Why a corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of a JSONL corpus is not a document.
    #[error("{origin}, line {line}: not a corpus document: {reason}")]
    Json {
        /// The file (or `<string>`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        reason: String,
    },
}

/// A passage: a piece of a document, the unit that is indexed and returned.
#[derive(Debug, Clone)]
struct Passage {
    doc: usize,
    text: String,
}

/// Offline BM25 search over a corpus of documents: needs no key and no network.
///
/// Documents are split into passages (paragraphs, merged or cut to about 160 words); each
/// passage is indexed together with its document's title, and a search returns the best
/// passages with their BM25 scores (highest first, ties in corpus order). Build one with
/// [`LocalSearch::builtin`] (about forty notes on maths and science, shipped with the crate),
/// [`LocalSearch::from_documents`], [`LocalSearch::from_jsonl_str`],
/// [`LocalSearch::from_jsonl_file`] or [`LocalSearch::from_dir`].
///
/// ```
/// use orchflow_agent::tools::search::{CorpusDocument, LocalSearch};
/// let search = LocalSearch::from_documents(vec![
///     CorpusDocument::new("a", "Cats", "Cats purr and chase mice."),
///     CorpusDocument::new("b", "Stars", "Stars fuse hydrogen into helium."),
/// ]);
/// let hits = search.search("why do stars shine? hydrogen fusion", 3);
/// assert_eq!(hits[0].title, "Stars");
/// assert_eq!(hits.len(), 1);
/// ```
pub struct LocalSearch {
    documents: Vec<CorpusDocument>,
    passages: Vec<Passage>,
    engine: SearchEngine<u32, u32, SearchTokenizer>,
    max_results: usize,
}

impl std::fmt::Debug for LocalSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSearch")
            .field("documents", &self.documents.len())
            .field("passages", &self.passages.len())
            .field("max_results", &self.max_results)
            .finish()
    }
}

impl LocalSearch {
    /// The built-in corpus (see the crate's `data/search_corpus.jsonl`): definitions and
    /// formulas on primes, divisibility, modular arithmetic, counting, geometry, physical
    /// constants, mechanics, chemistry and genetics.
    ///
    /// Never fails: the corpus is part of the binary and checked by the crate's tests (should a
    /// line ever be invalid, it is skipped with a warning).
    pub fn builtin() -> Self {
        let mut docs = Vec::new();
        for (i, line) in BUILTIN_CORPUS.lines().enumerate() {
            match parse_line(line, i + 1, "<builtin corpus>") {
                Ok(Some(doc)) => docs.push(doc),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping a line of the built-in corpus: {e}"),
            }
        }
        Self::from_documents(docs)
    }

    /// A search over the given documents. Documents with an empty id get their position
    /// (`doc-<n>`, 1-based) as id.
    pub fn from_documents(documents: Vec<CorpusDocument>) -> Self {
        let mut documents = documents;
        for (i, d) in documents.iter_mut().enumerate() {
            if d.id.trim().is_empty() {
                d.id = format!("doc-{}", i + 1);
            }
        }
        let mut passages = Vec::new();
        for (doc, d) in documents.iter().enumerate() {
            for text in split_passages(&d.text) {
                passages.push(Passage { doc, text });
            }
        }
        let indexed: Vec<Document<u32>> = passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let title = &documents[p.doc].title;
                Document::new(
                    u32::try_from(i).unwrap_or(u32::MAX),
                    format!("{title}\n{}", p.text),
                )
            })
            .collect();
        let engine =
            SearchEngineBuilder::<u32, u32, SearchTokenizer>::with_tokenizer_and_documents(
                SearchTokenizer,
                indexed,
            )
            .build();
        LocalSearch {
            documents,
            passages,
            engine,
            max_results: DEFAULT_MAX_RESULTS,
        }
    }

    /// A search over a JSONL corpus held in a string: one [`CorpusDocument`] per line, blank
    /// lines skipped. A document without an id gets `line-<n>`.
    ///
    /// Fails with [`CorpusError::Json`] on the first line that is not a document.
    pub fn from_jsonl_str(jsonl: &str) -> Result<Self, CorpusError> {
        Ok(Self::from_documents(parse_jsonl(jsonl, "<string>")?))
    }

    /// A search over a JSONL corpus file (see [`LocalSearch::from_jsonl_str`]).
    ///
    /// Fails with [`CorpusError::Io`] when the file cannot be read and [`CorpusError::Json`]
    /// when a line is not a document.
    pub fn from_jsonl_file(path: impl AsRef<Path>) -> Result<Self, CorpusError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_documents(parse_jsonl(
            &text,
            &path.display().to_string(),
        )?))
    }

    /// A search over the `.md`, `.markdown` and `.txt` files of a directory (not recursive, in
    /// file-name order). Each file is one document: its id is the file name, its title the first
    /// Markdown heading (`# …`) or else the file stem, its text the rest, and its url the path.
    ///
    /// Fails with [`CorpusError::Io`] when the directory or one of its files cannot be read
    /// (files that are not valid UTF-8 included).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, CorpusError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CorpusError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let is_text = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(e.to_ascii_lowercase().as_str(), "md" | "markdown" | "txt")
            });
            if is_text && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut docs = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (title, body) = split_heading(&text);
            docs.push(CorpusDocument {
                id: name,
                title: title.unwrap_or(stem),
                text: body,
                url: Some(path.display().to_string()),
            });
        }
        Ok(Self::from_documents(docs))
    }

    /// Sets how many hits a call returns when its input does not say (default 5, clamped to
    /// `1..=20`).
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = n.clamp(1, super::MAX_RESULTS_LIMIT);
        self
    }

    /// The documents searched.
    pub fn documents(&self) -> &[CorpusDocument] {
        &self.documents
    }

    /// How many passages are indexed.
    pub fn passage_count(&self) -> usize {
        self.passages.len()
    }

    /// The best `k` passages for `query`, highest score first (ties in corpus order); only
    /// passages sharing at least one token with the query are returned, so the result may be
    /// shorter than `k`, or empty.
    pub fn search(&self, query: &str, k: usize) -> Vec<SearchHit> {
        let mut results = self.engine.search(query, None);
        results.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.document.id.cmp(&b.document.id))
        });
        results
            .into_iter()
            .filter(|r| r.score > 0.0)
            .filter_map(|r| {
                let passage = self.passages.get(usize::try_from(r.document.id).ok()?)?;
                let doc = self.documents.get(passage.doc)?;
                Some(SearchHit {
                    title: doc.title.clone(),
                    url: doc
                        .url
                        .clone()
                        .unwrap_or_else(|| format!("local:{}", doc.id)),
                    content: passage.text.clone(),
                    score: f64::from(r.score),
                })
            })
            .take(k)
            .collect()
    }
}

impl Tool for LocalSearch {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn description(&self) -> &str {
        "Search an offline library of short notes on mathematics and science (definitions, \
         formulas, constants). Input: the query as a string, or {\"query\": string, \
         \"max_results\"?: int}."
    }

    fn input_schema(&self) -> serde_json::Value {
        input_schema()
    }

    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            let q = parse_query(TOOL_NAME, input, self.max_results)?;
            let hits = self.search(&q.query, q.max_results);
            let content = if hits.is_empty() {
                let why = if SearchTokenizer.tokens(&q.query).is_empty() {
                    " (the query has no searchable words)"
                } else {
                    ""
                };
                format!(
                    "No results for \"{}\" in the local corpus ({} documents){why}.",
                    q.query,
                    self.documents.len()
                )
            } else {
                format_hits(None, &hits)
            };
            Ok(ToolOutput {
                content,
                data: Some(hits_data(&q.query, None, &hits)),
            })
        })
    }
}

fn parse_line(
    line: &str,
    number: usize,
    origin: &str,
) -> Result<Option<CorpusDocument>, CorpusError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let mut doc: CorpusDocument = serde_json::from_str(line).map_err(|e| CorpusError::Json {
        origin: origin.to_string(),
        line: number,
        reason: e.to_string(),
    })?;
    if doc.id.trim().is_empty() {
        doc.id = format!("line-{number}");
    }
    Ok(Some(doc))
}

fn parse_jsonl(text: &str, origin: &str) -> Result<Vec<CorpusDocument>, CorpusError> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(doc) = parse_line(line, i + 1, origin)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The first `# heading` of a Markdown text (if it comes before any other text) and the rest.
fn split_heading(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('#') {
        let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let title = line.trim_start_matches('#').trim();
        if !title.is_empty() {
            return (Some(title.to_string()), body.to_string());
        }
    }
    (None, text.to_string())
}

/// Splits a text into passages: paragraphs (blank-line separated) merged while they fit in
/// [`MAX_PASSAGE_WORDS`], longer paragraphs cut into windows of that many words.
fn split_passages(text: &str) -> Vec<String> {
    let mut passages = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let paragraphs = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>())
        .filter(|p| !p.is_empty());
    for words in paragraphs {
        if !current.is_empty() && current.len() + words.len() > MAX_PASSAGE_WORDS {
            passages.push(current.join(" "));
            current.clear();
        }
        if words.len() > MAX_PASSAGE_WORDS {
            for chunk in words.chunks(MAX_PASSAGE_WORDS) {
                passages.push(chunk.join(" "));
            }
        } else {
            current.extend(words);
        }
    }
    if !current.is_empty() {
        passages.push(current.join(" "));
    }
    passages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemming() {
        for (w, s) in [
            ("primes", "prime"),
            ("boxes", "box"),
            ("matches", "match"),
            ("probabilities", "probability"),
            ("gas", "gas"),
            ("class", "class"),
            ("radius", "radius"),
            ("analysis", "analysis"),
            ("gases", "gas"),
            ("series", "sery"),
            ("its", "its"),
        ] {
            assert_eq!(stem(w), s, "{w}");
        }
    }

    #[test]
    fn passages_are_split_and_merged() {
        let long = (0..400)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let p = split_passages(&format!("short one\n\nshort two\n\n{long}"));
        assert_eq!(p[0], "short one short two");
        assert_eq!(p.len(), 1 + 3);
        assert!(split_passages("  \n\n ").is_empty());
    }

    #[test]
    fn builtin_corpus_is_valid() {
        let docs = parse_jsonl(BUILTIN_CORPUS, "builtin").unwrap();
        assert!((25..=45).contains(&docs.len()), "{}", docs.len());
        let mut ids: Vec<_> = docs.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), docs.len(), "duplicate ids");
        assert!(
            docs.iter()
                .all(|d| !d.title.is_empty() && !d.text.is_empty())
        );
    }

    #[test]
    fn heading() {
        assert_eq!(
            split_heading("# Title\nbody\n"),
            (Some("Title".to_string()), "body\n".to_string())
        );
        assert_eq!(
            split_heading("no heading"),
            (None, "no heading".to_string())
        );
    }
}
