//! Leases: who holds a run, for how long, and how a claim is let go.
//!
//! A claim is a lease on the run's row: `owner` (the handle's [`owner_id`]), `token` (the
//! claim's fencing token) and `lease_expires`, always computed on the database's clock
//! (`clock_timestamp()`), so that machines whose clocks disagree still agree on who holds a
//! run. A lease is live while `lease_expires` is in the future on that clock.
//!
//! Invariants:
//!
//! * **Renewal.** Each store handle has one heartbeat task that, every interval, renews in
//!   one statement every lease the handle holds ([`Held`]) that is still live with the same
//!   owner and token. A lapsed lease is never revived: once `lease_expires` has passed, the
//!   claim is lost even if nobody took the run yet. The task stops when the handle is dropped.
//! * **Release.** Dropping a claim must not block, so its [`Hold`] records the release in the
//!   process-wide [`PENDING`] list and performs it on a task. Until that task's statement has
//!   run, any handle of this process about to claim a run (`claim`, `claim_next`,
//!   `mark_waiting`) performs the pending releases of its database and schema first, in its
//!   own statement, or waits for the one in flight (each release is performed under its own
//!   lock, once): a claim made right after a drop never sees the dropped lease, nor the row
//!   lock of its release (which `FOR UPDATE SKIP LOCKED` would take for a busy run). A
//!   release only clears the lease it was issued for (same owner and token), so a late one
//!   never touches a newer claim.

use crate::codec::{io_error, token_sql};
use crate::pool::Conn;
use crate::store::Inner;
use orchflow_core::RunId;
use orchflow_core::store::{ClaimHold, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Who a store handle is, as written in `owner` and shown in `RunBusy`: the host, the process
/// and a random id of the handle, e.g. `worker-3 pid 4242 handle 8c1e2f3a`.
pub(crate) fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string());
    let handle = uuid::Uuid::new_v4().simple().to_string();
    format!("{host} pid {} handle {}", std::process::id(), &handle[..8])
}

/// The claims a handle holds (run → token), which its heartbeat renews.
pub(crate) type Held = Mutex<HashMap<RunId, u64>>;

/// A release not yet performed: the lease of `run_id` by `owner` with `token`, in the
/// database and schema `target`. `done` is locked by whoever performs it (the dropping
/// claim's task, or a claim of this process), so that the two never run at once: a claim
/// waits for a release in flight instead of meeting its row lock (which `SKIP LOCKED` would
/// take for a busy run).
#[derive(Debug)]
struct Release {
    target: Arc<str>,
    run_id: RunId,
    owner: Arc<str>,
    token: u64,
    done: tokio::sync::Mutex<bool>,
}

/// The releases of this process not yet performed (see the module docs), oldest first.
static PENDING: Mutex<Vec<Arc<Release>>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<Arc<Release>>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears the leases listed, each only if it still has its owner and token.
const RELEASE: &str = "UPDATE runs SET owner = NULL, lease_expires = NULL
    FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS r(run_id, owner, token)
    WHERE runs.run_id = r.run_id AND runs.owner = r.owner AND runs.token = r.token";

/// Performs `releases` (oldest first) in one statement, skipping those already done, and
/// forgets them. Locks each release in the order of [`PENDING`], so that two performers
/// never wait for each other in a cycle.
async fn perform(
    conn: &mut Conn,
    location: &str,
    releases: &[Arc<Release>],
) -> Result<(), StoreError> {
    let mut guards = Vec::with_capacity(releases.len());
    for release in releases {
        guards.push(release.done.lock().await);
    }
    let todo: Vec<&Release> = releases
        .iter()
        .zip(&guards)
        .filter(|(_, done)| !***done)
        .map(|(r, _)| &**r)
        .collect();
    if !todo.is_empty() {
        let ids: Vec<RunId> = todo.iter().map(|r| r.run_id).collect();
        let owners: Vec<&str> = todo.iter().map(|r| &*r.owner).collect();
        let tokens: Vec<i64> = todo
            .iter()
            .map(|r| token_sql(r.token).unwrap_or(i64::MAX))
            .collect();
        let statement = conn.prepare(RELEASE, location).await?;
        conn.client
            .execute(&statement, &[&ids, &owners, &tokens])
            .await
            .map_err(|e| io_error("release a lease in", location, &e))?;
    }
    for done in &mut guards {
        **done = true;
    }
    pending().retain(|p| !releases.iter().any(|r| Arc::ptr_eq(p, r)));
    Ok(())
}

/// Performs this process's pending releases for `target`, on `conn`, waiting for those in
/// flight.
pub(crate) async fn flush(
    conn: &mut Conn,
    target: &Arc<str>,
    location: &str,
) -> Result<(), StoreError> {
    let releases: Vec<Arc<Release>> = pending()
        .iter()
        .filter(|r| r.target == *target)
        .cloned()
        .collect();
    if releases.is_empty() {
        return Ok(());
    }
    perform(conn, location, &releases).await
}

/// What a [`Claim`](orchflow_core::store::Claim) of this store keeps: the handle (so its
/// heartbeat renews the lease while the claim lives) and what to release.
pub(crate) struct Hold {
    pub(crate) inner: Arc<Inner>,
    pub(crate) run_id: RunId,
    pub(crate) token: u64,
}

impl ClaimHold for Hold {
    fn release(self: Box<Self>) {
        let Hold {
            inner,
            run_id,
            token,
        } = *self;
        {
            let mut held = inner.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.get(&run_id) == Some(&token) {
                held.remove(&run_id);
            }
        }
        let release = Arc::new(Release {
            target: Arc::clone(&inner.target),
            run_id,
            owner: Arc::clone(&inner.owner),
            token,
            done: tokio::sync::Mutex::new(false),
        });
        pending().push(Arc::clone(&release));
        let runtime =
            tokio::runtime::Handle::try_current().unwrap_or_else(|_| inner.runtime.clone());
        // If the runtime is gone, the release stays pending: the next claim of this process
        // performs it, and otherwise the lease lapses after its ttl.
        drop(runtime.spawn(async move {
            let result = match inner.pool.get().await {
                Ok(mut conn) => perform(&mut conn, &inner.location, &[release]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(target: "orchflow_postgres", "releasing run {run_id}: {e}; the next claim from this process retries, and the lease lapses after its ttl");
            }
        }));
    }
}

/// Renews every lease of `inner` still live, in one statement.
const RENEW: &str =
    "UPDATE runs SET lease_expires = clock_timestamp() + $3::float8 * interval '1 second'
    FROM unnest($1::uuid[], $2::bigint[]) AS h(run_id, token)
    WHERE runs.run_id = h.run_id AND runs.token = h.token AND runs.owner = $4
      AND runs.lease_expires > clock_timestamp()";

/// The heartbeat of a handle: renews its leases every `every` until the handle is gone.
pub(crate) async fn heartbeat(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let (ids, tokens): (Vec<RunId>, Vec<i64>) = {
            let held = inner.held.lock().unwrap_or_else(|p| p.into_inner());
            held.iter()
                .filter_map(|(run, token)| Some((*run, token_sql(*token)?)))
                .unzip()
        };
        if ids.is_empty() {
            continue;
        }
        let result = async {
            let mut conn = inner.pool.get().await?;
            let statement = conn.prepare(RENEW, &inner.location).await?;
            conn.client
                .execute(
                    &statement,
                    &[&ids, &tokens, &inner.ttl.as_secs_f64(), &&*inner.owner],
                )
                .await
                .map_err(|e| io_error("renew leases in", &inner.location, &e))
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(target: "orchflow_postgres", "heartbeat: {e}; retrying in {every:?}");
        }
    }
}
