//! What the sandbox finds out about the machine at its first call: the interpreter and the
//! paths it reads, the kernel's Landlock ABI, and, by probing, the strongest combination of
//! layers (seccomp, a mount namespace, another user) the interpreter starts under; the gate
//! that refuses to run without Landlock; the status the tool reports.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::child::{self, ChildPlan, Exposure, Identity, MountPlan};
use super::platform::{GroupGuard, labelled_tail, raw_limits, sandbox_env};
use super::{Config, RunAs, SandboxLimits, SandboxStatus};
use crate::tools::ToolError;

/// What the first call found out about the machine.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(super) python: PathBuf,
    /// What the interpreter may read (and execute): its prefix's libraries, `sys.path`, the
    /// shared libraries it maps, the system's library directories.
    pub(super) read_roots: Vec<PathBuf>,
    pub(super) identity: Identity,
    pub(super) seccomp: bool,
    /// The kernel's Landlock ABI; `None` when the kernel does not enforce Landlock.
    pub(super) landlock_abi: Option<u32>,
    /// Whether the child enters a private, read-only mount namespace.
    pub(super) mount_namespace: bool,
    /// What the mount namespace makes reachable for the sandbox user (see [`Exposure`]).
    pub(super) exposures: Vec<Exposure>,
}

/// What the sandbox will run with (finds the interpreter at the first call, like
/// [`run`](super::platform::run)).
pub(crate) async fn status(
    config: &Config,
    host: &tokio::sync::OnceCell<Result<Host, ToolError>>,
) -> Result<SandboxStatus, ToolError> {
    let host = host.get_or_init(|| discover(config)).await.clone()?;
    Ok(SandboxStatus {
        python: host.python.clone(),
        landlock_abi: host.landlock_abi,
        mount_namespace: host.mount_namespace,
        seccomp: host.seccomp,
        user_switched: matches!(host.identity, Identity::Switch { .. }),
        refusal: landlock_gate(config, &host).err().map(|e| e.to_string()),
    })
}

/// Without Landlock the sandbox refuses to run unless the configuration opts out.
pub(super) fn landlock_gate(config: &Config, host: &Host) -> Result<(), ToolError> {
    if host.landlock_abi.is_some() || config.allow_without_landlock {
        return Ok(());
    }
    Err(ToolError::Unavailable {
        reason: "the kernel does not enforce Landlock (the sandbox's file-system boundary): \
                 the code tool refuses to run; enable the Landlock LSM (Linux 5.13+, `lsm=` \
                 boot parameter), or accept the weaker sandbox with \
                 PythonSandbox::builder().allow_without_landlock(true)"
            .into(),
    })
}

/// Finds the interpreter and the paths it reads, asks the kernel for its Landlock ABI, and probes
/// the strongest combination of layers the interpreter starts under: seccomp on before off, a
/// mount namespace before none, another user before the same. Landlock, when the kernel has it,
/// is in every probe (it is never dropped silently; without it [`landlock_gate`] decides).
pub(super) async fn discover(config: &Config) -> Result<Host, ToolError> {
    let (python, read_roots) = resolve_python(&config.python).await?;
    let landlock_abi = child::landlock_abi();
    let mut candidates = Vec::new();
    let root = child::effective_uid() == 0;
    match config.run_as {
        RunAs::Current => {}
        RunAs::Auto | RunAs::User { .. } if !root => {}
        RunAs::Auto => candidates.push(Identity::Switch {
            uid: 65534,
            gid: 65534,
        }),
        RunAs::User { uid, gid } => candidates.push(Identity::Switch { uid, gid }),
    }
    candidates.push(Identity::Unchanged);
    let seccomp_options: &[bool] = if config.seccomp && child::SECCOMP_SUPPORTED {
        &[true, false]
    } else {
        &[false]
    };
    let scratch_root = config
        .scratch_root
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let mut last_error = String::new();
    for &seccomp in seccomp_options {
        for mount_namespace in [true, false] {
            for &identity in &candidates {
                // Another user may need the interpreter exposed under a directory it cannot
                // search; only in a mount namespace, and not over the scratch directories.
                let exposures = match identity {
                    Identity::Switch { uid, gid } if mount_namespace => {
                        let exposures = child::hidden_roots(&read_roots, uid, gid);
                        if exposures
                            .iter()
                            .any(|e| scratch_root.starts_with(&e.hidden))
                        {
                            continue;
                        }
                        exposures
                    }
                    _ => Vec::new(),
                };
                let host = Host {
                    python: python.clone(),
                    read_roots: read_roots.clone(),
                    identity,
                    seccomp,
                    landlock_abi,
                    mount_namespace,
                    exposures,
                };
                match probe(&host).await {
                    Ok(()) => {
                        report_weaker_layers(config, &host, root);
                        return Ok(host);
                    }
                    Err(e) => last_error = e,
                }
            }
        }
    }
    Err(ToolError::Unavailable {
        reason: format!(
            "Python ({}) does not start in the sandbox: {last_error}",
            python.display()
        ),
    })
}

/// Logs, once, the layers this machine does not give the sandbox.
fn report_weaker_layers(config: &Config, host: &Host, root: bool) {
    let python = host.python.display();
    if host.identity == Identity::Unchanged && root && config.run_as != RunAs::Current {
        tracing::info!(
            python = %python,
            "the code sandbox keeps uid 0 (the unprivileged user cannot reach the interpreter), \
             without any capability, under Landlock"
        );
    }
    if !host.seccomp && config.seccomp && child::SECCOMP_SUPPORTED {
        tracing::warn!("the code sandbox runs without its seccomp filter");
    }
    if !host.mount_namespace {
        tracing::warn!("the code sandbox runs without a private read-only mount namespace");
    }
    if host.landlock_abi.is_none() {
        tracing::warn!(
            allowed = config.allow_without_landlock,
            "the kernel does not enforce Landlock: the code sandbox has no file-system boundary"
        );
    }
}

/// What the discovery script prints.
#[derive(serde::Deserialize)]
struct Discovered {
    executable: String,
    recent: bool,
    paths: Vec<String>,
}

/// Asks the interpreter for its real executable (`sys.executable`, resolved) and what it reads:
/// `sys.path`, the directories of the shared objects it has mapped, its prefixes' `lib`
/// directories. Printed as one JSON line; runs before the sandbox exists, with the host's rights.
const DISCOVERY_SCRIPT: &str = r#"
import json, os, sys
paths = set()
def add(p):
    if isinstance(p, str) and os.path.isabs(p) and os.path.exists(p):
        paths.add(os.path.realpath(p))
for p in sys.path:
    add(p)
for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
    for lib in ("lib", "lib64"):
        add(os.path.join(prefix, lib))
add(os.path.realpath(sys.executable))
try:
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                add(os.path.dirname(parts[5].strip()))
except OSError:
    pass
print(json.dumps({"executable": os.path.realpath(sys.executable), "recent": sys.version_info >= (3, 8), "paths": sorted(paths)}))
"#;

/// Files and directories every interpreter may read besides its own: the dynamic loader's cache
/// and the system's libraries, time zones.
const SYSTEM_READ_ROOTS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
];

/// Resolves `python` (a name or path, possibly a wrapper script) to the real interpreter, and
/// lists what it reads (see [`DISCOVERY_SCRIPT`], plus [`SYSTEM_READ_ROOTS`]).
async fn resolve_python(python: &Path) -> Result<(PathBuf, Vec<PathBuf>), ToolError> {
    let mut cmd = Command::new(python);
    cmd.args(["-I", "-c", DISCOVERY_SCRIPT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolError::Unavailable {
                reason: format!(
                    "no Python interpreter `{}` (install python3 or choose one with \
                     PythonSandbox::builder().python(...))",
                    python.display()
                ),
            });
        }
        Ok(Err(e)) => {
            return Err(ToolError::Unavailable {
                reason: format!("cannot run `{}`: {e}", python.display()),
            });
        }
        Err(_) => {
            return Err(ToolError::Unavailable {
                reason: format!("`{}` did not answer within 30 s", python.display()),
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let found = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<Discovered>(line).ok());
    let Some(found) = found.filter(|f| f.recent && output.status.success()) else {
        return Err(ToolError::Unavailable {
            reason: format!(
                "`{}` is not a usable Python 3.8+ interpreter{}",
                python.display(),
                labelled_tail("stderr", &String::from_utf8_lossy(&output.stderr))
            ),
        });
    };
    let executable = if found.executable.is_empty() {
        python.to_path_buf()
    } else {
        PathBuf::from(found.executable)
    };
    let mut roots: Vec<PathBuf> = found.paths.into_iter().map(PathBuf::from).collect();
    roots.extend(
        SYSTEM_READ_ROOTS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists()),
    );
    roots.push(executable.clone());
    roots.sort();
    roots.dedup();
    Ok((executable, roots))
}

/// Starts the interpreter once as `host` says (the modules the runner needs imported), under
/// generous limits: the probe decides what the machine allows, once for the sandbox's lifetime,
/// so it must not fail because of the configured limits (those are reported per call) or of
/// other runs of the same user.
async fn probe(host: &Host) -> Result<(), String> {
    let limits = SandboxLimits {
        max_processes: 1 << 16,
        ..SandboxLimits::default()
    };
    let landlock = match host.landlock_abi {
        Some(_) => {
            Some(child::landlock_ruleset(&host.read_roots, None).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let (_ctl_read, ctl_write) = child::control_pipe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&host.python);
    cmd.args([
        "-I",
        "-B",
        "-c",
        "import ast, json, re, traceback, types, subprocess",
    ])
    .env_clear()
    .envs(sandbox_env(Path::new("/")))
    .current_dir("/")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut plan = ChildPlan::new(
        ctl_write.as_raw_fd(),
        false,
        raw_limits(&limits),
        host.identity,
        host.seccomp,
    );
    plan.landlock = landlock;
    if host.mount_namespace {
        plan.mounts = Some(MountPlan::new(None, &host.exposures).map_err(|e| e.to_string())?);
    }
    // SAFETY: as in `execute`: the closure only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || plan.apply());
    }
    let spawned = cmd.spawn();
    drop(ctl_write);
    drop(cmd);
    let child = spawned.map_err(|e| e.to_string())?;
    let group = GroupGuard(child.id());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| "the interpreter did not start within 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    group.kill();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "status {:?}{}",
            output.status.code(),
            labelled_tail("stderr", &String::from_utf8_lossy(&output.stderr))
        ))
    }
}
