//! Peak memory of many concurrently suspended runs: each run stops at a human-input step whose
//! provider waits for an answer that has not come yet, as a server holding open conversations
//! would. Baseline: the same number of bare tokio tasks waiting on the same signal.
//!
//! `cargo run --release -p orchflow-bench --bin suspended -- [RUNS]` prints one JSON object:
//! per suspended run, for orchflow and for the baseline, the resident memory (what the process
//! costs the machine, which depends on the allocator's arenas and so varies from run to run)
//! and the live heap bytes (counted by a global allocator that wraps the system's: exact and
//! repeatable, without the allocator's own overhead).

use orchflow::human::{self, Answer};
use orchflow::{flow, step};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

#[step]
async fn draft(id: u64) -> u64 {
    id * 2
}

#[step]
async fn decide(a: Answer<u64>) -> bool {
    a.text == "yes" && a.value > 0
}

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter only
// observes sizes.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            LIVE.fetch_add(new, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn settle(waiting: &AtomicUsize, n: usize) {
    while waiting.load(Ordering::SeqCst) < n {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    let (baseline, orchflow) = rt.block_on(async {
        // Baseline: n tasks parked on one signal.
        let release = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let (before, heap_before) = (rss(), live());
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let release = release.clone();
                let waiting = waiting.clone();
                tokio::spawn(async move {
                    let notified = release.notified();
                    waiting.fetch_add(1, Ordering::SeqCst);
                    notified.await;
                    i * 2
                })
            })
            .collect();
        settle(&waiting, n).await;
        let baseline = rss().saturating_sub(before) as f64 / n as f64;
        let baseline_heap = live().saturating_sub(heap_before) as f64 / n as f64;
        release.notify_waiters();
        for t in tasks {
            let _ = t.await;
        }
        drop(release);

        // orchflow: n runs suspended in a human-input step.
        let release = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let provider = {
            let release = release.clone();
            let waiting = waiting.clone();
            human::async_callback(move |_req| {
                let release = release.clone();
                let waiting = waiting.clone();
                async move {
                    let notified = release.notified();
                    waiting.fetch_add(1, Ordering::SeqCst);
                    notified.await;
                    "yes".to_string()
                }
            })
        };
        let review = human::ask("review", |d: &u64| format!("approve {d}?"));
        let f = flow! { draft => (review) => decide }.with_input(provider);
        if std::env::var_os("SIZES").is_some() {
            eprintln!("run future: {} bytes", std::mem::size_of_val(&f.run(1)));
        }
        let (before, heap_before) = (rss(), live());
        let runs: Vec<_> = (0..n as u64)
            .map(|i| {
                let f = f.clone();
                tokio::spawn(async move { f.run(i + 1).await.output })
            })
            .collect();
        settle(&waiting, n).await;
        let orchflow = rss().saturating_sub(before) as f64 / n as f64;
        let orchflow_heap = live().saturating_sub(heap_before) as f64 / n as f64;
        release.notify_waiters();
        let mut done = 0usize;
        for r in runs {
            if let Ok(Some(true)) = r.await {
                done += 1;
            }
        }
        if done != n {
            eprintln!("only {done} of {n} runs completed");
        }
        ((baseline, baseline_heap), (orchflow, orchflow_heap))
    });
    let ((baseline, baseline_heap), (orchflow, orchflow_heap)) = (baseline, orchflow);
    println!(
        "{{\"runs\": {n}, \"orchflow_bytes_per_suspended_run\": {orchflow:.0}, \"tokio_task_bytes\": {baseline:.0}, \"orchflow_heap_bytes_per_suspended_run\": {orchflow_heap:.0}, \"tokio_task_heap_bytes\": {baseline_heap:.0}}}"
    );
}
