//! The site audit flow of `checkpoint_resume`, shared with the app binary of `orchflow-cli`'s
//! `site_audit_app` example (which replays and forks its runs): the steps, and the flow in
//! three builds (`site_audit!`, and two changed ones).

#![allow(dead_code, unused_macros)]

use orchflow::step;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Set once the "outage" is over.
pub static UPSTREAM_UP: AtomicBool = AtomicBool::new(false);
pub static EXPENSIVE_CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub pages: u32,
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the upstream service is down")]
pub struct Outage;

/// Pretend this costs money: it must not run twice.
#[step]
pub async fn crawl(site: String) -> u32 {
    EXPENSIVE_CALLS.fetch_add(1, Ordering::SeqCst);
    println!("  crawl: crawling {site} (expensive)");
    site.len() as u32 * 3
}

#[step]
pub async fn count_links(pages: &u32) -> u32 {
    println!("  count_links: {pages} pages");
    pages * 7
}

#[step]
pub async fn count_images(pages: &u32) -> u32 {
    println!("  count_images: {pages} pages");
    pages * 2
}

#[step]
pub async fn summarize(counts: (u32, u32)) -> Result<Report, Outage> {
    if !UPSTREAM_UP.load(Ordering::SeqCst) {
        println!("  summarize: upstream is down, failing");
        return Err(Outage);
    }
    println!("  summarize: writing the report");
    Ok(Report {
        pages: counts.0 / 7,
        summary: format!("{} links, {} images", counts.0, counts.1),
    })
}

#[step]
pub async fn summarize_only(pages: u32) -> Report {
    Report {
        pages,
        summary: String::new(),
    }
}

/// Counts links, under the name a later build gives the step.
#[step]
pub async fn count_anchors(pages: &u32) -> u32 {
    pages * 7
}

/// The flow: crawl once, count links and images at once, write the report. The including file
/// brings the steps into scope (`use site_audit::*;`).
macro_rules! site_audit {
    () => {
        orchflow::flow! { #[flow(name = "site_audit")]
            crawl => [count_links, count_images] => summarize
        }
    };
}

/// A changed build: the counts are gone.
macro_rules! site_audit_changed {
    () => {
        orchflow::flow! { #[flow(name = "site_audit")] crawl => summarize_only }
    };
}

/// A changed build: `count_links` renamed `count_anchors`.
macro_rules! site_audit_renamed {
    () => {
        orchflow::flow! { #[flow(name = "site_audit")]
            crawl => [count_anchors, count_images] => summarize
        }
    };
}
