//! Running a program on Linux: the child process (see `child.rs` for what it does between
//! `fork` and `exec`), its scratch directory and Landlock ruleset, reading its output under the
//! caps, and turning how it ended into the tool's result. What the machine offers (the
//! interpreter, its discovery and probe, which kernel layers there are) is `host.rs`.

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::child::{self, ChildPlan, Identity, MountPlan, RawLimits};
pub(crate) use super::host::{Host, status};
use super::host::{discover, landlock_gate};
use super::{Config, SandboxLimits};
use crate::tools::{ToolError, ToolOutput};

/// The Python half of the sandbox: the static checker, the run-time guards and the runner.
const RUNNER: &str = include_str!("runner.py");

/// Runs a checked program: finds the interpreter at the first call (kept in `host`), makes a
/// scratch directory, runs the program in it and removes it.
pub(super) async fn run(
    config: &Config,
    host: &tokio::sync::OnceCell<Result<Host, ToolError>>,
    code: &str,
) -> Result<ToolOutput, ToolError> {
    let host = host.get_or_init(|| discover(config)).await.clone()?;
    landlock_gate(config, &host)?;
    let root = config
        .scratch_root
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let scratch = Scratch::create(&root, host.identity).map_err(|e| ToolError::Unavailable {
        reason: format!(
            "cannot create a scratch directory under {}: {e}",
            root.display()
        ),
    })?;
    let sandbox = Sandboxed { config };
    let result = sandbox.execute(&host, &scratch.path, code).await;
    scratch.remove().await;
    result
}

/// One call's view of the configuration.
struct Sandboxed<'a> {
    config: &'a Config,
}

impl Sandboxed<'_> {
    async fn execute(
        &self,
        host: &Host,
        scratch: &Path,
        code: &str,
    ) -> Result<ToolOutput, ToolError> {
        let limits = &self.config.limits;
        let (ctl_read, ctl_write) = child::control_pipe().map_err(|e| ToolError::Unavailable {
            reason: format!("cannot create a pipe: {e}"),
        })?;
        let runner_config = json!({
            "allow": self.config.allowed,
            "deny": self.config.denied,
            "scratch": scratch,
            "ctl_fd": ctl_write.as_raw_fd(),
            "guards": self.config.python_guards,
        });
        let landlock = match host.landlock_abi {
            Some(_) => Some(
                child::landlock_ruleset(&host.read_roots, Some(scratch)).map_err(|e| {
                    ToolError::Unavailable {
                        reason: format!("cannot build the Landlock ruleset: {e}"),
                    }
                })?,
            ),
            None => None,
        };
        let mut cmd = Command::new(&host.python);
        // -I: isolated mode (no PYTHON* variables, no user site, no script directory on the
        // path); -B: no bytecode files. No -S: site-packages stay importable (sympy, numpy).
        // No limit on int/str conversion: the CPU limit already bounds it.
        cmd.args([
            "-I",
            "-B",
            "-X",
            "utf8",
            "-X",
            "int_max_str_digits=0",
            "-c",
            RUNNER,
        ])
        .arg(runner_config.to_string())
        .env_clear()
        .envs(sandbox_env(scratch))
        .current_dir(scratch)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut plan = ChildPlan::new(
            ctl_write.as_raw_fd(),
            self.config.isolate_network,
            raw_limits(limits),
            host.identity,
            host.seccomp,
        );
        plan.landlock = landlock;
        if host.mount_namespace {
            plan.mounts = Some(MountPlan::new(Some(scratch), &host.exposures).map_err(|e| {
                ToolError::Unavailable {
                    reason: format!("cannot prepare the sandbox's mounts: {e}"),
                }
            })?);
        }
        // SAFETY: `ChildPlan::apply` only makes async-signal-safe system calls on data prepared
        // before the fork (see its safety argument); it neither allocates nor unwinds.
        unsafe {
            cmd.pre_exec(move || plan.apply());
        }
        let started = Instant::now();
        let spawned = cmd.spawn();
        drop(ctl_write);
        drop(cmd);
        let mut child = spawned.map_err(|e| spawn_error(&e))?;
        let group = GroupGuard(child.id());
        tracing::debug!(pid = ?child.id(), "sandboxed python started");

        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let program = code.as_bytes().to_vec();
        let write_stdin = async move {
            if let Some(mut stdin) = stdin {
                // A program that exits without reading its stdin closes the pipe: not an error.
                let _ = stdin.write_all(&program).await;
                let _ = stdin.shutdown().await;
            }
        };
        tokio::pin!(write_stdin);

        let cap = limits.output_bytes;
        let mut captured = Captured::default();
        let mut out_buf = vec![0u8; 16 * 1024];
        let mut err_buf = vec![0u8; 16 * 1024];
        let deadline = tokio::time::Instant::now() + limits.wall_time;
        let mut status: Option<ExitStatus> = None;
        let mut stdin_done = false;
        let mut stop: Option<Stop> = None;
        loop {
            if status.is_some() && stdout.is_none() && stderr.is_none() {
                break;
            }
            tokio::select! {
                () = &mut write_stdin, if !stdin_done => stdin_done = true,
                read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => match read {
                    Ok(n) if n > 0 => {
                        if captured.push(Stream::Out, &out_buf[..n], cap) {
                            stop = Some(Stop::Output);
                            break;
                        }
                    }
                    _ => stdout = None,
                },
                read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => match read {
                    Ok(n) if n > 0 => {
                        if captured.push(Stream::Err, &err_buf[..n], cap) {
                            stop = Some(Stop::Output);
                            break;
                        }
                    }
                    _ => stderr = None,
                },
                waited = child.wait(), if status.is_none() => match waited {
                    Ok(s) => status = Some(s),
                    Err(e) => {
                        return Err(ToolError::Unavailable {
                            reason: format!("cannot wait for the sandboxed process: {e}"),
                        });
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    if status.is_none() {
                        stop = Some(Stop::Wall);
                    }
                    break;
                }
            }
        }
        if status.is_none() {
            group.kill();
            let _ = child.start_kill();
        }
        let status = match status {
            Some(s) => s,
            None => child.wait().await.map_err(|e| ToolError::Unavailable {
                reason: format!("cannot wait for the sandboxed process: {e}"),
            })?,
        };
        // Whatever the program left behind in its group goes too.
        group.kill();
        let elapsed = started.elapsed();
        let control = Control::parse(&child::drain(&ctl_read, 256 * 1024));
        let run = Finished {
            stop,
            code: status.code(),
            signal: status.signal(),
            control,
            stdout: captured.stdout,
            stderr: captured.stderr,
            elapsed,
            host,
        };
        self.classify(run)
    }

    /// Turns a finished run into the tool's result.
    fn classify(&self, run: Finished<'_>) -> Result<ToolOutput, ToolError> {
        let limits = &self.config.limits;
        match run.stop {
            Some(Stop::Wall) => return Err(ToolError::timed_out("wall time", limits.wall_time)),
            Some(Stop::Output) if self.config.truncate_output => {
                return Ok(run.success(true));
            }
            Some(Stop::Output) => {
                return Err(ToolError::LimitExceeded {
                    what: "output".into(),
                    detail: format!(
                        "the program printed more than {} bytes (stdout and stderr together) \
                         and was stopped; print less, e.g. only the final answer",
                        limits.output_bytes
                    ),
                });
            }
            None => {}
        }
        let cpu_limit = Duration::from_secs(limits.cpu_seconds());
        match &run.control.outcome {
            Some(Outcome::SyntaxError(message)) => {
                return Err(ToolError::Failed {
                    message: format!("the program does not parse: {message}"),
                });
            }
            Some(Outcome::Refused(problems)) => {
                return Err(ToolError::Refused {
                    reason: format!("the program was not run: {}", problems.join("; ")),
                });
            }
            Some(Outcome::Violation(message)) => {
                return Err(ToolError::Refused {
                    reason: format!("the program was stopped by the sandbox: {message}"),
                });
            }
            Some(Outcome::Exception { kind, traceback }) => {
                if kind == "MemoryError" {
                    return Err(memory_error(limits));
                }
                if (kind == "RuntimeError" && traceback.contains("can't start new thread"))
                    || (kind == "BlockingIOError"
                        && traceback.contains("Resource temporarily unavailable"))
                {
                    return Err(processes_error(limits));
                }
                let mut message = traceback.trim_end().to_string();
                let stdout = String::from_utf8_lossy(&run.stdout);
                if !stdout.trim().is_empty() {
                    message.push_str("\n[stdout before the error]\n");
                    message.push_str(tail(stdout.trim_end(), 1500));
                }
                return Err(ToolError::Failed { message });
            }
            Some(Outcome::Exit {
                code,
                message: said,
            }) => {
                let mut message = format!("the program exited with status {code}");
                if said.parse::<i64>().is_err() && !said.is_empty() {
                    message.push_str(": ");
                    message.push_str(said);
                }
                let stderr = String::from_utf8_lossy(&run.stderr);
                if !stderr.trim().is_empty() {
                    message.push_str("\n[stderr]\n");
                    message.push_str(tail(stderr.trim_end(), 1500));
                }
                return Err(ToolError::Failed { message });
            }
            Some(Outcome::Ok) | None => {}
        }
        let stderr = String::from_utf8_lossy(&run.stderr);
        if let Some(signal) = run.signal {
            return Err(match signal {
                libc::SIGXCPU => ToolError::timed_out("CPU time", cpu_limit),
                // Not sent by us (we only kill after a stop): the hard CPU limit, one second after
                // the soft one, or the kernel's out-of-memory killer.
                libc::SIGKILL if run.elapsed + Duration::from_millis(200) >= cpu_limit => {
                    ToolError::timed_out("CPU time", cpu_limit)
                }
                libc::SIGKILL => memory_error(limits),
                libc::SIGXFSZ => ToolError::LimitExceeded {
                    what: "file size".into(),
                    detail: format!(
                        "the program wrote a file larger than {} bytes",
                        limits.file_size_bytes
                    ),
                },
                _ if memory_hint(&stderr) => memory_error(limits),
                _ => ToolError::Failed {
                    message: format!(
                        "the Python process was killed by signal {signal}{}",
                        labelled_tail("stderr", &stderr)
                    ),
                },
            });
        }
        match run.code {
            Some(0) => Ok(run.success(false)),
            _ if memory_hint(&stderr) => Err(memory_error(limits)),
            code => Err(ToolError::Failed {
                message: format!(
                    "{} (status {}){}",
                    if run.control.running {
                        "the program ended abnormally"
                    } else {
                        "the sandboxed interpreter failed to start"
                    },
                    code.map_or_else(|| "unknown".to_string(), |c| c.to_string()),
                    labelled_tail("stderr", &stderr)
                ),
            }),
        }
    }
}

fn memory_error(limits: &SandboxLimits) -> ToolError {
    ToolError::LimitExceeded {
        what: "memory".into(),
        detail: format!(
            "the program needed more than {} MiB of memory",
            limits.memory_bytes / (1024 * 1024)
        ),
    }
}

fn processes_error(limits: &SandboxLimits) -> ToolError {
    ToolError::LimitExceeded {
        what: "processes".into(),
        detail: format!(
            "the sandbox user may run at most {} processes and threads at once",
            limits.max_processes
        ),
    }
}

/// Text that interpreters and C libraries print when an allocation fails.
fn memory_hint(stderr: &str) -> bool {
    [
        "MemoryError",
        "Cannot allocate memory",
        "out of memory",
        "std::bad_alloc",
        "failed to allocate",
        "failed to map segment",
    ]
    .iter()
    .any(|hint| stderr.contains(hint))
}

/// The last `max` bytes of `text` (on a character boundary), with an ellipsis when cut.
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

pub(super) fn labelled_tail(label: &str, text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() {
        String::new()
    } else {
        format!("\n[{label}]\n{}", tail(text, 1500))
    }
}

fn spawn_error(e: &std::io::Error) -> ToolError {
    if e.raw_os_error() == Some(libc::EAGAIN) {
        // execve refuses a process whose user already runs RLIMIT_NPROC processes.
        return ToolError::LimitExceeded {
            what: "processes".into(),
            detail: "too many sandboxed programs are running at once".into(),
        };
    }
    ToolError::Unavailable {
        reason: format!("cannot start the sandboxed interpreter: {e}"),
    }
}

pub(super) fn raw_limits(limits: &SandboxLimits) -> RawLimits {
    RawLimits {
        cpu_seconds: limits.cpu_seconds(),
        address_space: limits.memory_bytes,
        file_size: limits.file_size_bytes,
        open_files: limits.open_files,
        processes: limits.max_processes,
    }
}

/// The whole environment of the sandboxed interpreter.
pub(super) fn sandbox_env(scratch: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let scratch = scratch.as_os_str().to_os_string();
    let fixed = |s: &str| std::ffi::OsString::from(s);
    vec![
        ("PATH", fixed("/usr/bin:/bin")),
        ("HOME", scratch.clone()),
        ("TMPDIR", scratch),
        ("LANG", fixed("C.UTF-8")),
        ("LC_ALL", fixed("C.UTF-8")),
        ("PYTHONDONTWRITEBYTECODE", fixed("1")),
        ("PYTHONNOUSERSITE", fixed("1")),
        ("PYTHONIOENCODING", fixed("utf-8")),
        // One thread per numeric library, and few malloc arenas: both keep the address space
        // (RLIMIT_AS) for the program's data.
        ("OPENBLAS_NUM_THREADS", fixed("1")),
        ("OMP_NUM_THREADS", fixed("1")),
        ("MKL_NUM_THREADS", fixed("1")),
        ("NUMEXPR_NUM_THREADS", fixed("1")),
        ("MALLOC_ARENA_MAX", fixed("2")),
    ]
}

/// Why the parent stopped the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Wall,
    Output,
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// stdout and stderr, capped together.
#[derive(Debug, Default)]
struct Captured {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Captured {
    /// Appends what fits under `cap`; returns `true` when `chunk` did not fit.
    fn push(&mut self, stream: Stream, chunk: &[u8], cap: usize) -> bool {
        let room = cap.saturating_sub(self.stdout.len() + self.stderr.len());
        let target = match stream {
            Stream::Out => &mut self.stdout,
            Stream::Err => &mut self.stderr,
        };
        if chunk.len() > room {
            target.extend_from_slice(&chunk[..room]);
            true
        } else {
            target.extend_from_slice(chunk);
            false
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => Ok(0),
    }
}

/// How the runner said the program ended (its last status on the control pipe).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    SyntaxError(String),
    Refused(Vec<String>),
    Violation(String),
    Exception { kind: String, traceback: String },
    Exit { code: i64, message: String },
}

/// What came through the control pipe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Control {
    network_isolated: bool,
    mount_namespace: bool,
    running: bool,
    outcome: Option<Outcome>,
}

impl Control {
    fn parse(bytes: &[u8]) -> Control {
        let text = String::from_utf8_lossy(bytes);
        let mut control = Control::default();
        for line in text.lines() {
            if let Some(flag) = line.strip_prefix("netns=") {
                control.network_isolated = flag == "1";
                continue;
            }
            if let Some(flag) = line.strip_prefix("mountns=") {
                control.mount_namespace = flag == "1";
                continue;
            }
            let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let text_of = |key: &str| {
                msg.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let outcome = match msg.get("status").and_then(Value::as_str) {
                Some("running") => {
                    control.running = true;
                    continue;
                }
                Some("ok") => Outcome::Ok,
                Some("syntax_error") => Outcome::SyntaxError(text_of("message")),
                Some("refused") => Outcome::Refused(
                    msg.get("problems")
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Some("violation") => Outcome::Violation(text_of("message")),
                Some("exception") => Outcome::Exception {
                    kind: text_of("type"),
                    traceback: text_of("traceback"),
                },
                Some("exit") => Outcome::Exit {
                    code: msg.get("code").and_then(Value::as_i64).unwrap_or(1),
                    message: text_of("message"),
                },
                _ => continue,
            };
            control.outcome = Some(outcome);
        }
        control
    }
}

/// A finished run, before classification.
struct Finished<'a> {
    stop: Option<Stop>,
    code: Option<i32>,
    signal: Option<i32>,
    control: Control,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    host: &'a Host,
}

impl Finished<'_> {
    fn success(&self, truncated: bool) -> ToolOutput {
        let mut content = String::from_utf8_lossy(&self.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&self.stderr);
        if !stderr.is_empty() {
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str("[stderr]\n");
            content.push_str(&stderr);
        }
        if truncated {
            if !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str("[output truncated: the program was stopped]");
        }
        let privileges = match self.host.identity {
            Identity::Unchanged => "unchanged",
            Identity::Switch { .. } => "dropped",
        };
        ToolOutput {
            content,
            data: Some(json!({
                "exit_code": if truncated { None } else { self.code },
                "duration_ms": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
                "truncated": truncated,
                "network_isolated": self.control.network_isolated,
                "privileges": privileges,
                "capabilities": "none",
                "seccomp": self.host.seccomp,
                "landlock_abi": self.host.landlock_abi,
                "mount_namespace": self.control.mount_namespace,
            })),
        }
    }
}

/// Kills the child's process group when dropped (also when the call's future is dropped).
pub(super) struct GroupGuard(pub(super) Option<u32>);

impl GroupGuard {
    pub(super) fn kill(&self) {
        if let Some(pgid) = self.0 {
            child::kill_group(pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A per-call scratch directory, removed afterwards (also when the call is cancelled).
struct Scratch {
    path: PathBuf,
    removed: bool,
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Scratch {
    fn create(root: &Path, identity: Identity) -> std::io::Result<Scratch> {
        let pid = std::process::id();
        let mut last = None;
        for _ in 0..16 {
            let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = root.join(format!("orchflow-code-{pid}-{n}-{nanos:08x}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let scratch = Scratch {
                        path,
                        removed: false,
                    };
                    if let Identity::Switch { uid, gid } = identity {
                        std::os::unix::fs::chown(&scratch.path, Some(uid), Some(gid))?;
                    }
                    return Ok(scratch);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free scratch directory name")))
    }

    async fn remove(mut self) {
        self.removed = true;
        let path = std::mem::take(&mut self.path);
        let done = tokio::task::spawn_blocking({
            let path = path.clone();
            move || std::fs::remove_dir_all(path)
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::code::child::Exposure;

    #[test]
    fn output_cap_counts_both_streams() {
        let mut c = Captured::default();
        assert!(!c.push(Stream::Out, b"abcd", 6));
        assert!(c.push(Stream::Err, b"efg", 6));
        assert_eq!(c.stdout, b"abcd");
        assert_eq!(c.stderr, b"ef");
    }

    #[test]
    fn control_lines_parse() {
        let c = Control::parse(
            b"netns=1\n{\"status\": \"running\"}\n{\"status\": \"exception\", \"type\": \"MemoryError\", \"traceback\": \"t\"}\n",
        );
        assert!(c.network_isolated && c.running);
        assert_eq!(
            c.outcome,
            Some(Outcome::Exception {
                kind: "MemoryError".into(),
                traceback: "t".into()
            })
        );
        let c = Control::parse(
            b"netns=0\ngarbage\n{\"status\": \"refused\", \"problems\": [\"a\", \"b\"]}",
        );
        assert!(!c.network_isolated && !c.running);
        assert_eq!(
            c.outcome,
            Some(Outcome::Refused(vec!["a".into(), "b".into()]))
        );
    }

    /// Without Landlock the sandbox refuses, saying how to opt out; with the opt-out it runs.
    #[test]
    fn no_landlock_refuses_unless_allowed() {
        let host = Host {
            python: PathBuf::from("/usr/bin/python3"),
            read_roots: Vec::new(),
            identity: Identity::Unchanged,
            seccomp: true,
            landlock_abi: None,
            mount_namespace: false,
            exposures: Vec::new(),
        };
        let strict = super::super::PythonSandbox::builder().build();
        let err = landlock_gate(&strict.config, &host).unwrap_err();
        assert_eq!(err.kind(), "unavailable");
        assert!(err.to_string().contains("allow_without_landlock"), "{err}");
        let relaxed = super::super::PythonSandbox::builder()
            .allow_without_landlock(true)
            .build();
        assert!(landlock_gate(&relaxed.config, &host).is_ok());
        let with_landlock = Host {
            landlock_abi: Some(1),
            ..host
        };
        assert!(landlock_gate(&strict.config, &with_landlock).is_ok());
    }

    /// A root under a directory others cannot search is exposed from the topmost such
    /// directory; nested roots ride along with their parent root; reachable roots need nothing.
    #[test]
    fn hidden_roots_start_at_the_topmost_closed_directory() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let closed = base.path().join("home");
        let prefix = closed.join("pyenv/versions/3.11");
        std::fs::create_dir_all(prefix.join("lib/site")).unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let roots = vec![
            prefix.join("lib"),
            prefix.join("lib/site"),
            PathBuf::from("/usr/lib"),
        ];
        let exposures = child::hidden_roots(&roots, 65534, 65534);
        assert_eq!(
            exposures,
            vec![Exposure {
                hidden: closed,
                roots: vec![prefix.join("lib")],
            }]
        );
        assert!(child::hidden_roots(&[PathBuf::from("/usr/lib")], 65534, 65534).is_empty());
    }

    #[test]
    fn mount_namespace_is_read_from_the_control_pipe() {
        assert!(Control::parse(b"netns=0\nmountns=1\n").mount_namespace);
        assert!(!Control::parse(b"netns=1\nmountns=0\n").mount_namespace);
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }

    /// The seccomp filter refuses fork (here: a shell starting a command) but lets a program
    /// run; only where the filter exists and /bin/sh does.
    #[tokio::test]
    async fn seccomp_filter_blocks_fork() {
        if !child::SECCOMP_SUPPORTED || !Path::new("/bin/sh").exists() {
            return;
        }
        let run = |script: &'static str| async move {
            let (_r, w) = child::control_pipe().unwrap();
            let mut cmd = Command::new("/bin/sh");
            cmd.args(["-c", script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let plan = ChildPlan::new(
                w.as_raw_fd(),
                false,
                raw_limits(&SandboxLimits::default()),
                Identity::Unchanged,
                true,
            );
            unsafe {
                cmd.pre_exec(move || plan.apply());
            }
            let out = cmd.output().await.unwrap();
            (
                out.status,
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let (status, stdout) = run("echo inside").await;
        assert!(status.success());
        assert_eq!(stdout.trim(), "inside");
        // The shell must fork to run /bin/echo; it cannot, and gives up.
        let (status, stdout) = run("/bin/echo forked; echo after").await;
        assert!(!stdout.contains("forked"), "{stdout}");
        assert!(!status.success());
    }
}
