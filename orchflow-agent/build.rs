//! Sets `orchflow_sandbox` when the target can run the code tool's sandbox (Linux).
//!
//! `ORCHFLOW_AGENT_NO_SANDBOX=1` builds without it on Linux too, so that the fallback (every
//! call `ToolError::Unavailable`) is compiled and tested here.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(orchflow_sandbox)");
    println!("cargo::rerun-if-env-changed=ORCHFLOW_AGENT_NO_SANDBOX");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let disabled = std::env::var_os("ORCHFLOW_AGENT_NO_SANDBOX").is_some_and(|v| v == "1");
    if linux && !disabled {
        println!("cargo::rustc-cfg=orchflow_sandbox");
    }
}
