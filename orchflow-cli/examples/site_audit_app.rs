//! An application's own `orchflow` binary: the whole command line with the flows of this
//! build (`orchflow_cli::App`), so that `replay` and `runs fork` can run their code.
//!
//! ```text
//! cargo run --example checkpoint_resume -- --store runs.db          # records runs of site_audit
//! cargo run -p orchflow-cli --example site_audit_app -- --store runs.db replay
//! cargo run -p orchflow-cli --example site_audit_app -- --store runs.db runs fork RUN --from count_images --input 10
//! ```
//!
//! `SITE_AUDIT_BUILD=renamed` registers a build in which `count_links` is renamed
//! `count_anchors`, to see what `replay` reports for a change before it is deployed.

#[path = "../../examples/support/site_audit.rs"]
#[macro_use]
mod site_audit;

use orchflow::registry::Registry;
use site_audit::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let flows = match std::env::var("SITE_AUDIT_BUILD").as_deref() {
        Ok("renamed") => Registry::new().register(site_audit_renamed!()),
        _ => Registry::new().register(site_audit!()),
    };
    // Past the outage: a fork runs `summarize` for real.
    UPSTREAM_UP.store(true, std::sync::atomic::Ordering::SeqCst);
    orchflow_cli::App::new(flows).main()
}
