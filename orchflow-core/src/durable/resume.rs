//! Replay: what a journal says to resume from ([`saved_state`]), and what a generated driver
//! starts from when it resumes ([`Resume`]): the last saved point of the generated state, and
//! the values saved inside the item that follows it ([`Memo`]).

use crate::store::{JournalEntry, PointRecord};
use std::collections::HashMap;
use std::sync::Mutex;

/// What a generated driver starts from: nothing (a fresh run), or the last saved point and the
/// inner positions saved after it.
#[doc(hidden)]
pub struct Resume<P> {
    /// The last top-level point (`None`: start from the input).
    pub(crate) point: Option<P>,
    /// Values saved inside the item after `point`, taken as the driver replays that item.
    pub(crate) memo: Memo<P>,
}

impl<P> Resume<P> {
    /// A fresh run.
    pub(crate) fn fresh() -> Self {
        Resume {
            point: None,
            memo: Memo(None),
        }
    }

    /// `inner` in journal order; a later save of the same position replaces an earlier one.
    pub(crate) fn new(point: Option<P>, inner: Vec<SavedAt<P>>) -> Self {
        let memo = if inner.is_empty() {
            None
        } else {
            let mut kept: Saves<P> = HashMap::new();
            for (name, path, value) in inner {
                kept.entry(name).or_default().insert(path, value);
            }
            // Boxed: every run's future carries a memo, and almost all are empty.
            Some(Box::new(Mutex::new(kept)))
        };
        Resume {
            point,
            memo: Memo(memo),
        }
    }
}

/// Saved inner positions, each a variant of the generated state with the iteration numbers of
/// the loops (and the `map` items) around it. Empty (and free to ask) for a fresh run.
#[doc(hidden)]
pub struct Memo<P>(Option<Box<Mutex<Saves<P>>>>);

/// One saved inner position: its variant name, the loop path, the value.
type SavedAt<P> = (String, Vec<u32>, P);

/// The saved values by variant name, then by path: a `take` is two hash look-ups (a resumed
/// map of 10,000 items takes each of its saved items in constant time).
type Saves<P> = HashMap<String, HashMap<Vec<u32>, P>>;

impl<P> Memo<P> {
    /// The value saved at position `name` in the loop iterations `path`, if any; each is taken
    /// once.
    #[inline]
    pub(crate) fn take(&self, name: &str, path: &[u32]) -> Option<P> {
        let memo = self.0.as_ref()?;
        let mut entries = match memo.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.get_mut(name)?.remove(path)
    }
}

/// What a journal says to resume from.
pub(crate) struct Saved {
    /// The last top-level point, with the parallel branches finished after it filled in.
    pub(crate) point: Option<serde_json::Value>,
    /// The inner positions saved after it: variant name, loop path, value.
    pub(crate) inner: Vec<(String, Vec<u32>, serde_json::Value)>,
    /// The last position saved (one of `points`), for `checkpoint_loaded`.
    pub(crate) loaded: Option<&'static str>,
    /// The answers not yet retired by a save: `(question, answer)`, oldest first.
    pub(crate) answers: Vec<(String, String)>,
}

/// The state to resume from: the last saved point, with the parallel branches finished after it
/// filled in, and the inner positions saved after it.
pub(crate) fn saved_state(journal: &[JournalEntry], points: &'static [&'static str]) -> Saved {
    let known = |name: &str| points.iter().copied().find(|p| *p == name);
    let at = journal
        .iter()
        .rposition(|e| matches!(e.record, PointRecord::Point(_)));
    let (mut point, after) = match at {
        Some(at) => match &journal[at].record {
            PointRecord::Point(json) => (Some(json.clone()), &journal[at + 1..]),
            _ => (None, journal),
        },
        None => (None, journal),
    };
    let mut loaded = point
        .as_ref()
        .and_then(|json| json.as_object())
        .and_then(|o| o.keys().next())
        .map(|k| known(k).unwrap_or("start"));
    // Answers live until a save retires them, wherever they are in the journal.
    let mut answers: Vec<(String, String)> = Vec::new();
    for entry in journal {
        if let PointRecord::Answer { question, text } = &entry.record {
            answers.push((question.clone(), text.clone()));
        }
        for q in &entry.answered {
            if let Some(i) = answers.iter().position(|(a, _)| a == q) {
                answers.remove(i);
            }
        }
    }
    let mut inner = Vec::new();
    for entry in after {
        match &entry.record {
            PointRecord::Branch {
                group,
                index,
                value,
            } => {
                if let Some(slot) = point
                    .as_mut()
                    .and_then(|json| json.get_mut(group.as_str()))
                    .and_then(|g| g.get_mut("done"))
                    .and_then(|d| d.get_mut(*index))
                {
                    *slot = value.clone();
                }
            }
            PointRecord::Inner { name, path, value } => {
                loaded = Some(known(name).unwrap_or("start"));
                inner.push((name.clone(), path.clone(), value.clone()));
            }
            PointRecord::Point(_) | PointRecord::Stopped | PointRecord::Answer { .. } => {}
        }
    }
    Saved {
        point,
        inner,
        loaded,
        answers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_memo_has_nothing_and_a_saved_value_is_taken_once() {
        let fresh: Resume<u32> = Resume::fresh();
        assert_eq!(fresh.memo.take("A", &[]), None);
        let r = Resume::new(
            None,
            vec![
                ("A".to_string(), vec![0], 1),
                ("A".to_string(), vec![1], 2),
                ("B".to_string(), vec![], 3),
                ("A".to_string(), vec![1], 4),
            ],
        );
        assert_eq!(r.memo.take("A", &[1]), Some(4), "the latest save wins");
        assert_eq!(r.memo.take("A", &[1]), None, "and replaces the earlier one");
        assert_eq!(r.memo.take("A", &[0]), Some(1));
        assert_eq!(r.memo.take("A", &[0]), None, "taken once");
        assert_eq!(r.memo.take("B", &[]), Some(3));
        assert_eq!(r.memo.take("B", &[0]), None, "another path");
    }
}
