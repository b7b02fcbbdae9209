//! The store contract's cases, each a function of the fixture.

use super::*;

// The query cases (listing, search, counts, paging, graphs, journal and traces) are in
// `queries`; they are run from here like the others.
pub use super::queries::*;

/// A created run loads back as written with an empty journal, through the handle that
/// wrote it (used as `dyn CheckpointStore`) and another one; an unknown run loads as
/// `None`; `document` reads the document alone; the store names where the run lives.
pub async fn create_then_load_round_trips<F: StoreFixture>(fixture: F) {
    let store: Arc<dyn CheckpointStore> = Arc::new(fixture.open().await);
    let run_id = RunId::new_v4();
    assert!(store.load(run_id).await.expect("load").is_none());
    assert!(store.document(run_id).await.expect("document").is_none());
    let doc = document(run_id, RunStatus::Running, 0);
    let claim = store.create(&doc).await.expect("create");
    assert_eq!(claim.run_id(), run_id);
    let loaded = store.load(run_id).await.expect("load").expect("created");
    assert_eq!(loaded.document, doc);
    assert!(loaded.journal.is_empty(), "{:?}", loaded.journal);
    store.append(&claim, &entry(1)).await.expect("append");
    let loaded = store.load(run_id).await.expect("load").expect("created");
    assert_eq!(loaded.journal, [entry(1)]);
    drop(claim);
    let other = fixture.open().await;
    assert_eq!(other.document(run_id).await.expect("document"), Some(doc));
    assert_eq!(other.load(run_id).await.expect("load"), Some(loaded));
    assert!(!store.location(run_id).is_empty());
}

/// Creating a run with a taken id is `RunExists`, whether the run is claimed or not and
/// from whichever handle, and changes nothing.
pub async fn create_refuses_a_taken_id<F: StoreFixture>(fixture: F) {
    let (a, b) = (fixture.open().await, fixture.open().await);
    let (run_id, claim) = claimed_run(&a, 1).await;
    let before = a.load(run_id).await.expect("load");
    let mut other = document(run_id, RunStatus::Running, 60);
    other.flow = "another".to_string();
    let taken = |result: Result<Claim, StoreError>| match result {
        Err(StoreError::RunExists(id)) => assert_eq!(id, run_id),
        other => panic!("expected RunExists, got {other:?}"),
    };
    taken(a.create(&other).await);
    taken(b.create(&other).await);
    drop(claim);
    taken(a.create(&other).await);
    taken(b.create(&other).await);
    assert_eq!(a.load(run_id).await.expect("load"), before);
    assert_eq!(b.load(run_id).await.expect("load"), before);
}

/// A held claim makes every other claim of the run `RunBusy`, from this handle or another;
/// dropping it frees the run.
pub async fn claim_is_exclusive_until_dropped<F: StoreFixture>(fixture: F) {
    let (a, b) = (fixture.open().await, fixture.open().await);
    let (run_id, claim) = claimed_run(&a, 0).await;
    busy(&a.claim(run_id).await, run_id);
    busy(&b.claim(run_id).await, run_id);
    let err = b.claim(run_id).await.expect_err("busy");
    assert!(err.to_string().contains(&run_id.to_string()), "{err}");
    drop(claim);
    let claim = b.claim(run_id).await.expect("free once dropped");
    assert_eq!(claim.run_id(), run_id);
    busy(&a.claim(run_id).await, run_id);
    busy(&b.claim(run_id).await, run_id);
    drop(claim);
    a.claim(run_id).await.expect("free once dropped");
}

/// Every claim of a run has a greater fencing token than the claims before it, whichever
/// handle takes it.
pub async fn fencing_token_grows_with_every_claim<F: StoreFixture>(fixture: F) {
    let (a, b) = (fixture.open().await, fixture.open().await);
    let run_id = RunId::new_v4();
    let mut last = a
        .create(&document(run_id, RunStatus::Running, 0))
        .await
        .expect("create")
        .token();
    for store in [&b, &a, &a, &b, &b] {
        let token = store.claim(run_id).await.expect("claim").token();
        assert!(token > last, "token {token} after {last}");
        last = token;
    }
}

/// A write with a claim the store does not honour (an earlier claim's token, a token it
/// never issued, another run's claim) is `ClaimLost`, and writes nothing.
pub async fn writes_with_a_stale_claim_are_refused<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let (run_id, first) = claimed_run(&store, 1).await;
    let stale_token = first.token();
    drop(first);
    let current = store.claim(run_id).await.expect("claim");
    let other_run = released_run(&store, 0).await;
    let before = store.load(run_id).await.expect("load");
    for (claim, token) in [
        (forged(run_id, stale_token), stale_token),
        (forged(run_id, current.token() + 1), current.token() + 1),
        (forged(other_run, current.token()), current.token()),
    ] {
        let lost = |result: Result<(), StoreError>| match result {
            Err(StoreError::ClaimLost {
                run_id: id,
                token: t,
            }) => {
                assert_eq!((id, t), (claim.run_id(), token));
            }
            other => panic!("expected ClaimLost, got {other:?}"),
        };
        lost(store.append(&claim, &entry(2)).await);
        let mut failed = document(claim.run_id(), RunStatus::Failed, 0);
        failed.error = Some("stale".to_string());
        lost(store.put_document(&claim, &failed).await);
    }
    assert_eq!(store.load(run_id).await.expect("load"), before);
    assert!(journal(&store, other_run).await.is_empty());
    store.append(&current, &entry(2)).await.expect("append");
    assert_eq!(journal(&store, run_id).await, [entry(1), entry(2)]);
}

/// An append whose `seq` is not the last one's plus one is `OutOfSequence` and writes
/// nothing; a new claim (on another handle) continues after the stored journal's last.
pub async fn appends_out_of_sequence_are_refused<F: StoreFixture>(fixture: F) {
    let (a, b) = (fixture.open().await, fixture.open().await);
    let (run_id, claim) = claimed_run(&a, 0).await;
    let refused = |result: Result<(), StoreError>, last: u64, found: u64| match result {
        Err(StoreError::OutOfSequence {
            run_id: id,
            last: l,
            found: f,
        }) => assert_eq!((id, l, f), (run_id, last, found)),
        other => panic!("expected OutOfSequence (last {last}, found {found}), got {other:?}"),
    };
    refused(a.append(&claim, &entry(2)).await, 0, 2);
    a.append(&claim, &entry(1)).await.expect("append");
    for seq in [1, 3, 0] {
        refused(a.append(&claim, &entry(seq)).await, 1, seq);
    }
    assert_eq!(journal(&a, run_id).await, [entry(1)]);
    drop(claim);
    let claim = b.claim(run_id).await.expect("claim");
    refused(b.append(&claim, &entry(1)).await, 1, 1);
    b.append(&claim, &entry(2)).await.expect("append");
    assert_eq!(journal(&a, run_id).await, [entry(1), entry(2)]);
}

/// Entries of every kind load back in the order they were appended, whole, from this
/// handle and another.
pub async fn appends_load_back_in_order<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let (run_id, claim) = claimed_run(&store, 0).await;
    let entries: Vec<JournalEntry> = (1..=40).map(rich_entry).collect();
    for e in &entries {
        store.append(&claim, e).await.expect("append");
    }
    assert_eq!(journal(&store, run_id).await, entries);
    drop(claim);
    assert_eq!(journal(&fixture.open().await, run_id).await, entries);
}

/// `put_document` replaces the whole document and leaves the journal alone; a claim covers
/// its own run, so another run's document is refused (`ClaimLost`).
pub async fn put_document_replaces_the_document<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let (run_id, claim) = claimed_run(&store, 1).await;
    let mut suspended = document(run_id, RunStatus::Suspended, 0);
    suspended.pending = vec![PendingInput::new("1/review", "review", "ship it?")];
    suspended.updated_at += Duration::from_secs(5);
    store.put_document(&claim, &suspended).await.expect("put");
    let loaded = store.load(run_id).await.expect("load").expect("the run");
    assert_eq!(loaded.document, suspended);
    assert_eq!(loaded.journal, [entry(1)]);
    drop(claim);

    let other = fixture.open().await;
    let claim = other.claim(run_id).await.expect("claim");
    let mut done = document(run_id, RunStatus::Completed, 0);
    done.output = Some(serde_json::json!({ "shipped": true }));
    done.updated_at += Duration::from_secs(9);
    // The lineage of a fork, and the forks of a run, are kept with the document.
    done.lineage = crate::store::Lineage {
        forked_from: Some(crate::store::ForkOrigin {
            run_id: RunId::new_v4(),
            at: crate::store::ForkAt::parse("act@2").expect("a call"),
            path: "loop act[1] > step act".into(),
            input: Some(serde_json::json!({ "edited": "é\n\"" })),
            fingerprint: "0123456789abcdef".into(),
        }),
        forks: vec![RunId::new_v4(), RunId::new_v4()],
    };
    other.put_document(&claim, &done).await.expect("put");
    let loaded = store.load(run_id).await.expect("load").expect("the run");
    assert_eq!(loaded.document, done);
    assert_eq!(loaded.journal, [entry(1)]);

    // A claim covers its own run: another run's document is refused, and neither changes.
    let stranger = RunId::new_v4();
    match other
        .put_document(&claim, &document(stranger, RunStatus::Running, 0))
        .await
    {
        Err(StoreError::ClaimLost { run_id: id, .. }) => assert_eq!(id, run_id),
        other => panic!("expected ClaimLost for another run's document, got {other:?}"),
    }
    let loaded = store.load(run_id).await.expect("load").expect("the run");
    assert_eq!(loaded.document, done);
    assert_eq!(store.document(run_id).await.expect("document"), Some(done));
    assert!(store.load(stranger).await.expect("load").is_none());
}

/// `put_last_document` writes the whole document as `put_document` does and gives the claim
/// up: the run can be claimed at once, from any handle. With a claim the store does not honour
/// (an earlier claim's token, one it never issued, another run's document) it is `ClaimLost`,
/// writes nothing, and leaves the run's holder its claim.
pub async fn put_last_document_writes_and_gives_the_claim_up<F: StoreFixture>(fixture: F) {
    let (a, b) = (fixture.open().await, fixture.open().await);
    let (run_id, claim) = claimed_run(&a, 1).await;
    let mut done = document(run_id, RunStatus::Completed, 0);
    done.output = Some(serde_json::json!({ "shipped": true }));
    done.updated_at += Duration::from_secs(9);
    a.put_last_document(claim, &done).await.expect("put");
    let loaded = b.load(run_id).await.expect("load").expect("the run");
    assert_eq!(loaded.document, done);
    assert_eq!(loaded.journal, [entry(1)]);
    let current = b.claim(run_id).await.expect("given up with the document");
    busy(&a.claim(run_id).await, run_id);

    let mut failed = document(run_id, RunStatus::Failed, 0);
    failed.error = Some("stale".to_string());
    for (claim, token) in [
        (forged(run_id, current.token() - 1), current.token() - 1),
        (forged(run_id, current.token() + 1), current.token() + 1),
    ] {
        match a.put_last_document(claim, &failed).await {
            Err(StoreError::ClaimLost {
                run_id: id,
                token: t,
            }) => assert_eq!((id, t), (run_id, token)),
            other => panic!("expected ClaimLost, got {other:?}"),
        }
    }
    let stranger = RunId::new_v4();
    let theirs = forged(run_id, current.token());
    match b
        .put_last_document(theirs, &document(stranger, RunStatus::Failed, 0))
        .await
    {
        Err(StoreError::ClaimLost { run_id: id, .. }) => assert_eq!(id, run_id),
        other => panic!("expected ClaimLost for another run's document, got {other:?}"),
    }
    assert_eq!(b.load(run_id).await.expect("load"), Some(loaded));
    assert!(b.load(stranger).await.expect("load").is_none());
    busy(&a.claim(run_id).await, run_id);
    b.append(&current, &entry(2))
        .await
        .expect("the holder still writes");
}

/// A run the store does not have: `load` is `None`, `claim` is `NotFound`, and a write
/// shown a claim of it is refused (`NoDocument`, or `ClaimLost` for a store that only
/// knows the claims it issued) without creating it.
pub async fn missing_runs_are_not_found<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let _existing = released_run(&store, 1).await;
    let missing = RunId::new_v4();
    assert!(store.load(missing).await.expect("load").is_none());
    match store.claim(missing).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let claim = forged(missing, 1);
    let refused = |result: Result<(), StoreError>| {
        assert!(
            matches!(
                &result,
                Err(StoreError::NoDocument(id) | StoreError::ClaimLost { run_id: id, .. })
                    if *id == missing
            ),
            "{result:?}"
        );
    };
    refused(store.append(&claim, &entry(1)).await);
    refused(
        store
            .put_document(&claim, &document(missing, RunStatus::Running, 0))
            .await,
    );
    assert!(store.load(missing).await.expect("load").is_none());
    let listing = store.list_runs(&RunQuery::new()).await.expect("list");
    assert!(listing.runs.iter().all(|d| d.run_id != missing));
    match store.claim(missing).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// `list_runs` lists every run's current document, newest first, and the questions of the
/// suspended ones; an empty store lists nothing.
pub async fn list_runs_lists_runs_and_pending_questions<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let listing = store.list_runs(&RunQuery::new()).await.expect("list");
    assert!(
        listing.runs.is_empty() && listing.unreadable.is_empty(),
        "{listing:?}"
    );

    let (old, waiting, running) = (RunId::new_v4(), RunId::new_v4(), RunId::new_v4());
    let mut completed = document(old, RunStatus::Completed, -60);
    completed.output = Some(serde_json::json!(42));
    drop(store.create(&completed).await.expect("create"));
    let claim = store
        .create(&document(waiting, RunStatus::Running, 0))
        .await
        .expect("create");
    let mut suspended = document(waiting, RunStatus::Suspended, 0);
    suspended.pending = vec![
        PendingInput::new("1/review", "review", "ship it?"),
        PendingInput::new("legal/0/sign", "sign", "sign it?"),
    ];
    store.put_document(&claim, &suspended).await.expect("put");
    drop(claim);
    let _held = store
        .create(&document(running, RunStatus::Running, -30))
        .await
        .expect("create");

    for handle in [store, fixture.open().await] {
        let listing = handle.list_runs(&RunQuery::new()).await.expect("list");
        assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
        let ids: Vec<RunId> = listing.runs.iter().map(|d| d.run_id).collect();
        assert_eq!(ids, [waiting, running, old], "newest first");
        assert_eq!(listing.runs[0], suspended);
        assert_eq!(listing.runs[2], completed);
        let pending: Vec<(RunId, &str)> = listing
            .pending()
            .map(|(run, q)| (run, q.question.as_str()))
            .collect();
        assert_eq!(pending, [(waiting, "1/review"), (waiting, "legal/0/sign")]);
    }
}

/// Many tasks race to claim one run, through one shared handle and handles of their own:
/// exactly one wins, every other is `RunBusy`. Twenty rounds.
pub async fn racing_claims_have_one_winner<F: StoreFixture>(fixture: F) {
    let shared = Arc::new(fixture.open().await);
    let run_id = released_run(&*shared, 1).await;
    for round in 0..20 {
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let store = if i.is_multiple_of(2) {
                Arc::clone(&shared)
            } else {
                Arc::new(fixture.open().await)
            };
            tasks.push(tokio::spawn(async move { store.claim(run_id).await }));
        }
        let mut won = Vec::new();
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(claim) => won.push(claim),
                Err(StoreError::RunBusy { .. }) => {}
                Err(e) => panic!("round {round}: expected RunBusy, got {e:?}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
    }
}

/// Many tasks race to create one run: exactly one wins, every other is refused
/// (`RunExists`, or `RunBusy` while the winner is still creating it), and the run is the
/// winner's.
pub async fn racing_creates_have_one_winner<F: StoreFixture>(fixture: F) {
    let shared = Arc::new(fixture.open().await);
    for round in 0..10 {
        let run_id = RunId::new_v4();
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let store = if i.is_multiple_of(2) {
                Arc::clone(&shared)
            } else {
                Arc::new(fixture.open().await)
            };
            let mut doc = document(run_id, RunStatus::Running, 0);
            doc.input = serde_json::json!(i);
            tasks.push(tokio::spawn(async move {
                store.create(&doc).await.map(|claim| (claim, doc))
            }));
        }
        let mut won = Vec::new();
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(winner) => won.push(winner),
                Err(StoreError::RunExists(_) | StoreError::RunBusy { .. }) => {}
                Err(e) => panic!("round {round}: expected RunExists, got {e:?}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let loaded = shared.load(run_id).await.expect("load").expect("created");
        assert_eq!(loaded.document, won[0].1);
        assert!(loaded.journal.is_empty());
    }
}

/// Writers of different runs append at the same time: every entry lands, in order.
pub async fn concurrent_appends_to_different_runs_all_land<F: StoreFixture>(fixture: F) {
    let store = Arc::new(fixture.open().await);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let run_id = RunId::new_v4();
            let claim = store
                .create(&document(run_id, RunStatus::Running, 0))
                .await
                .expect("create");
            for seq in 1..=25 {
                store.append(&claim, &entry(seq)).await.expect("append");
            }
            run_id
        }));
    }
    let expected: Vec<JournalEntry> = (1..=25).map(entry).collect();
    for task in tasks {
        let run_id = task.await.expect("the task ran");
        assert_eq!(journal(&*store, run_id).await, expected);
    }
}

/// A damaged journal entry makes the run fail to load with `Corrupt`, naming where; other
/// runs still load.
pub async fn a_corrupt_journal_is_reported<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let healthy = released_run(&store, 2).await;
    let run_id = released_run(&store, 3).await;
    assert!(
        fixture.corrupt_journal(run_id).await,
        "the fixture's corrupt_journal did nothing: implement it, or call the macro with \
         `corruption: skipped`"
    );
    match store.load(run_id).await {
        Err(e @ StoreError::Corrupt { .. }) => {
            let location = e.location().expect("Corrupt names where");
            assert!(!location.is_empty());
            assert!(e.to_string().contains(location), "{e}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(journal(&store, healthy).await, [entry(1), entry(2)]);
}

/// A damaged document makes its run fail to load with `Corrupt`, naming where; listing
/// reports it apart and still lists the other runs.
pub async fn a_corrupt_document_is_reported_and_listed_apart<F: StoreFixture>(fixture: F) {
    let store = fixture.open().await;
    let healthy = released_run(&store, 1).await;
    let run_id = released_run(&store, 1).await;
    assert!(
        fixture.corrupt_document(run_id).await,
        "the fixture's corrupt_document did nothing: implement it, or call the macro with \
         `corruption: skipped`"
    );
    let err = store.load(run_id).await.expect_err("a corrupt document");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let location = err.location().expect("Corrupt names where");
    assert!(err.to_string().contains(location), "{err}");
    let listing = store.list_runs(&RunQuery::new()).await.expect("list");
    let ids: Vec<RunId> = listing.runs.iter().map(|d| d.run_id).collect();
    assert_eq!(ids, [healthy]);
    assert_eq!(listing.unreadable.len(), 1, "{:?}", listing.unreadable);
    assert!(
        matches!(listing.unreadable[0], StoreError::Corrupt { .. }),
        "{:?}",
        listing.unreadable
    );
    assert_eq!(journal(&store, healthy).await, [entry(1)]);
}
