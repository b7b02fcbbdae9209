//! The conformance cases of the queries every store answers: listing with filters, search and
//! counts, keyset paging, kept graphs, a run's journal, traces and questions. Run through
//! [`cases`](super::cases), which re-exports them.

use super::*;
use crate::store::{RunCursor, RunListing};

/// Seven runs of two flows, created a minute apart, in every status but cancelled; the
/// oldest first.
async fn seven_runs<S: CheckpointStore + ?Sized>(store: &S) -> Vec<RunDocument> {
    let statuses = [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Suspended,
        RunStatus::Completed,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
    ];
    let mut made = Vec::new();
    for (i, status) in statuses.into_iter().enumerate() {
        let offset = 60 * i64::try_from(i).expect("small");
        let mut d = document(RunId::new_v4(), status, offset);
        if i % 2 == 1 {
            d.flow = "review".to_string();
        }
        drop(store.create(&d).await.expect("create"));
        made.push(d);
    }
    made
}

/// `list_runs` filters by flow, status and creation time, every filter together, newest first.
pub async fn list_runs_filters_by_flow_status_and_time<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let made = seven_runs(&store).await;
    let ids = |listing: RunListing| -> Vec<RunId> {
        assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
        assert!(listing.next.is_none(), "unpaged listings have no next page");
        listing.runs.iter().map(|d| d.run_id).collect()
    };
    let newest_first = |keep: &dyn Fn(usize, &RunDocument) -> bool| -> Vec<RunId> {
        made.iter()
            .enumerate()
            .rev()
            .filter(|(i, d)| keep(*i, d))
            .map(|(_, d)| d.run_id)
            .collect()
    };
    let q = RunQuery::new();
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|_, _| true)
    );
    let q = RunQuery::new().flow("review");
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|i, _| i % 2 == 1)
    );
    let q = RunQuery::new().status(RunStatus::Completed);
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|_, d| d.status == RunStatus::Completed)
    );
    // since is inclusive, until exclusive: runs 2, 3 and 4.
    let q = RunQuery::new().since(at(120)).until(at(300));
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|i, _| (2..5).contains(&i))
    );
    let q = RunQuery::new()
        .flow("plan => act")
        .status(RunStatus::Completed)
        .since(at(60));
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|i, d| i % 2 == 0 && d.status == RunStatus::Completed && i >= 1)
    );
    let q = RunQuery::new().flow("no such flow");
    assert!(ids(store.list_runs(&q).await.expect("list")).is_empty());
}

/// A text search matches a run id's beginning or a part of a flow's name, literally (no
/// wildcards); `count_runs` counts per status under the flow, time and text filters and
/// ignores the status filter, the cursor and the limit.
pub async fn list_runs_searches_and_counts<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let made = seven_runs(&store).await;
    let ids = |listing: RunListing| -> Vec<RunId> {
        assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
        listing.runs.iter().map(|d| d.run_id).collect()
    };
    let newest_first = |keep: &dyn Fn(usize, &RunDocument) -> bool| -> Vec<RunId> {
        made.iter()
            .enumerate()
            .rev()
            .filter(|(i, d)| keep(*i, d))
            .map(|(_, d)| d.run_id)
            .collect()
    };
    let q = RunQuery::new().text("evie");
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        newest_first(&|i, _| i % 2 == 1),
        "a part of the flow's name"
    );
    let third = made[2].run_id.to_string();
    let q = RunQuery::new().text(&third[..13]);
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        [made[2].run_id]
    );
    for literal in ["%", "_", "plan%", "*", "REVIEW"] {
        let q = RunQuery::new().text(literal);
        assert!(
            ids(store.list_runs(&q).await.expect("list")).is_empty(),
            "{literal:?} is matched literally"
        );
    }
    let q = RunQuery::new().text("review").status(RunStatus::Failed);
    assert_eq!(
        ids(store.list_runs(&q).await.expect("list")),
        [made[1].run_id]
    );

    let tally = |keep: &dyn Fn(usize) -> bool| {
        let mut counts = StatusCounts::default();
        for (_, d) in made.iter().enumerate().filter(|(i, _)| keep(*i)) {
            counts.add(&d.status, 1);
        }
        counts
    };
    let all = store.count_runs(&RunQuery::new()).await.expect("count");
    assert_eq!(all, tally(&|_| true));
    assert_eq!((all.completed, all.total()), (3, 7));
    let q = RunQuery::new()
        .flow("review")
        .status(RunStatus::Completed)
        .limit(1)
        .after(RunCursor::of(&made[6]));
    assert_eq!(
        store.count_runs(&q).await.expect("count"),
        tally(&|i| i % 2 == 1),
        "the status filter, cursor and limit are not counting filters"
    );
    let q = RunQuery::new().since(at(120)).until(at(300)).text("plan");
    assert_eq!(
        store.count_runs(&q).await.expect("count"),
        tally(&|i| (2..5).contains(&i) && i % 2 == 0)
    );
}

/// A flow's graph is kept by fingerprint, read back equal through another handle, written
/// once (the first graph of a fingerprint stays), and a fingerprint that is not 16 lowercase
/// hex digits has no graph.
pub async fn graphs_are_kept_by_fingerprint<F: StoreFixture>(fixture: F) {
    use crate::graph::{Edge, EdgeKind, FlowGraph, Node, NodeKind};
    use std::borrow::Cow;
    let store = fixture.open().await;
    let graph = |name: &str| FlowGraph {
        name: Cow::Owned(name.to_string()),
        fingerprint: 0x0123_4567_89ab_cdef,
        nodes: Cow::Owned(vec![
            Node {
                id: "0".into(),
                parent: None,
                label: "plan".into(),
                kind: NodeKind::Step {
                    name: "plan".into(),
                    by_path: true,
                    retry: Some(2),
                    timeout_ms: None,
                    flow: None,
                },
            },
            Node {
                id: "1".into(),
                parent: None,
                label: "act".into(),
                kind: NodeKind::Step {
                    name: "act".into(),
                    by_path: true,
                    retry: None,
                    timeout_ms: Some(1500),
                    flow: None,
                },
            },
        ]),
        edges: Cow::Owned(vec![Edge {
            from: "0".into(),
            to: "1".into(),
            kind: EdgeKind::Sequence,
        }]),
        flows: Vec::new(),
    };
    assert_eq!(store.graph("0123456789abcdef").await.expect("read"), None);
    store.put_graph(&graph("plan => act")).await.expect("put");
    store
        .put_graph(&graph("plan => act"))
        .await
        .expect("put again");
    let other = fixture.open().await;
    other
        .put_graph(&graph("renamed"))
        .await
        .expect("put by another handle");
    for handle in [&store, &other] {
        assert_eq!(
            handle.graph("0123456789abcdef").await.expect("read"),
            Some(graph("plan => act"))
        );
    }
    for bad in [
        "0123456789ABCDEF",
        "../0123456789abcdef",
        "",
        "0123456789abcdef0",
        "x",
    ] {
        assert_eq!(store.graph(bad).await.expect("read"), None, "{bad:?}");
    }
    assert_eq!(store.graph("fedcba9876543210").await.expect("read"), None);
}

/// Paging with a limit walks the whole listing in order, each run once, the last page without
/// a cursor; runs created while paging (newer than the first page) do not shift the pages.
pub async fn list_runs_pages_with_a_cursor<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    // Newest first: what the listing holds when a paging starts.
    let mut all: Vec<RunId> = seven_runs(&store)
        .await
        .iter()
        .rev()
        .map(|d| d.run_id)
        .collect();
    for limit in [1, 2, 3, 7, 8] {
        let expected = all.clone();
        let mut seen = Vec::new();
        let mut query = RunQuery::new().limit(limit);
        let mut pages = 0;
        loop {
            let page = store.list_runs(&query).await.expect("list");
            assert!(
                page.runs.len() <= limit,
                "limit {limit}: {} runs",
                page.runs.len()
            );
            seen.extend(page.runs.iter().map(|d| d.run_id));
            pages += 1;
            if pages == 1 {
                // A run created after the first page is newer than every listed one: the
                // pages that follow must neither repeat a run nor skip one.
                let late = RunId::new_v4();
                let offset = 10_000 + i64::try_from(limit).expect("small");
                drop(
                    store
                        .create(&document(late, RunStatus::Queued, offset))
                        .await
                        .expect("create"),
                );
                all.insert(0, late);
            }
            match page.next {
                Some(cursor) => {
                    assert_eq!(Some(cursor), page.runs.last().map(RunCursor::of));
                    query = query.after(cursor);
                }
                None => break,
            }
            assert!(
                pages <= expected.len(),
                "limit {limit}: paging does not end"
            );
        }
        assert_eq!(seen, expected, "limit {limit}");
        assert_eq!(pages, expected.len().div_ceil(limit), "limit {limit}");
    }
    // Runs created at the same instant are ordered by id, and a cursor between them splits them.
    let same = [RunId::new_v4(), RunId::new_v4(), RunId::new_v4()];
    for id in same {
        drop(
            store
                .create(&document(id, RunStatus::Failed, -500))
                .await
                .expect("create"),
        );
    }
    let mut ids = same.to_vec();
    ids.sort_by(|a, b| b.cmp(a));
    let q = RunQuery::new()
        .status(RunStatus::Failed)
        .until(at(0))
        .limit(2);
    let first = store.list_runs(&q).await.expect("list");
    let got: Vec<RunId> = first.runs.iter().map(|d| d.run_id).collect();
    assert_eq!(got, ids[..2]);
    let rest = store
        .list_runs(&q.clone().after(first.next.expect("a next page")))
        .await
        .expect("list");
    let got: Vec<RunId> = rest.runs.iter().map(|d| d.run_id).collect();
    assert_eq!(got, ids[2..]);
    assert!(rest.next.is_none());
}

/// `journal` gives the entries after a seq, `traces` every trace in order, `questions` the
/// questions of suspended runs; an unknown run is `None`.
pub async fn journal_traces_and_questions_are_queried<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let run_id = RunId::new_v4();
    let claim = store
        .create(&document(run_id, RunStatus::Running, 0))
        .await
        .expect("create");
    let entries: Vec<JournalEntry> = (1..=5).map(traced_entry).collect();
    for e in &entries {
        store.append(&claim, e).await.expect("append");
    }
    assert_eq!(
        store.journal(run_id, 0).await.expect("journal"),
        Some(entries.clone())
    );
    assert_eq!(
        store.journal(run_id, 3).await.expect("journal"),
        Some(entries[3..].to_vec())
    );
    assert_eq!(
        store.journal(run_id, 5).await.expect("journal"),
        Some(Vec::new())
    );
    let traces: Vec<_> = entries.iter().flat_map(|e| e.traces.clone()).collect();
    assert_eq!(traces.len(), 10);
    assert_eq!(store.traces(run_id).await.expect("traces"), Some(traces));
    let unknown = RunId::new_v4();
    assert_eq!(store.journal(unknown, 0).await.expect("journal"), None);
    assert_eq!(store.traces(unknown).await.expect("traces"), None);

    let mut suspended = document(run_id, RunStatus::Suspended, 0);
    suspended.pending = vec![
        PendingInput::new("1/review", "review", "ship it?"),
        PendingInput::new("legal/0/sign", "sign", "sign it?"),
    ];
    store.put_document(&claim, &suspended).await.expect("put");
    drop(claim);
    let mut other = document(RunId::new_v4(), RunStatus::Suspended, 60);
    other.flow = "review".to_string();
    other.pending = vec![PendingInput::new("ok", "ok", "ok?")];
    drop(store.create(&other).await.expect("create"));
    drop(
        store
            .create(&document(RunId::new_v4(), RunStatus::Completed, 120))
            .await
            .expect("create"),
    );

    let all = store.questions(&RunQuery::new()).await.expect("questions");
    let got: Vec<(RunId, &str, &str)> = all
        .iter()
        .map(|q| (q.run_id, q.flow.as_str(), q.pending.question.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (other.run_id, "review", "ok"),
            (run_id, "plan => act", "1/review"),
            (run_id, "plan => act", "legal/0/sign"),
        ]
    );
    assert_eq!(all[1].since, suspended.updated_at);
    let review = store
        .questions(&RunQuery::new().flow("review"))
        .await
        .expect("questions");
    assert_eq!(review.len(), 1);
}
