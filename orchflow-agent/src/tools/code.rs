//! The `code` tool: runs a Python program in a sandbox and returns what it printed.
//!
//! [`PythonSandbox`] has two halves. The Python half shares the interpreter with the program and
//! is a first layer only; the boundary is the kernel's, which holds even against a program that
//! has switched the Python half off.
//!
//! **Python (first layer).**
//!
//! 1. *Static check before running.* The program is parsed with Python's `ast` module (inside
//!    the sandboxed interpreter, under the same limits) and refused when it imports anything not
//!    on the allow-list ([`DEFAULT_ALLOWED_MODULES`], configurable; submodules of allowed
//!    packages are allowed unless denied, see [`DEFAULT_DENIED_MODULES`]), names a removed builtin
//!    (`__import__`, `eval`, `exec`, `compile`, `open`, `globals`, `locals`, `vars`,
//!    `breakpoint`, `input`…), reads a dunder or private attribute (`__class__`,
//!    `__subclasses__`, `__globals__`, `_os`…) or one of the attributes that lead to the
//!    interpreter (`sys`, `os`, `modules`, frame attributes…), directly, through
//!    `getattr`-family calls with constant names, through format strings or match patterns.
//!    This gives clear refusals (name and line) for the common cases.
//! 2. *Run-time guards.* Builtins without `open`, `eval`, `exec`, `compile`, `input`…, an
//!    `__import__` that enforces the allow-list (also for code that libraries evaluate from
//!    strings, e.g. sympy's `sympify`, `lambdify`), a `getattr` family that refuses forbidden
//!    names, and an audit hook (PEP 578) that refuses process creation, signals, writes outside
//!    the scratch directory, reads outside the interpreter's files, sockets, `ctypes`, frame
//!    introspection and code-object construction.
//!
//! Both live in the program's own interpreter: an evaluator that uses the real builtins, calls
//! without an audit event (`os.mknod`, `os.mkfifo`), frames walked through `f_back` and
//! `f_locals` to the guards' own state (issue 11), or memory corruption get past them. So
//! nothing below relies on them.
//!
//! **The kernel (the boundary)**, set up in the child between `fork` and `exec`:
//!
//! 3. *Landlock* (Linux 5.13+; ABI 6 used where available): the program may read and execute
//!    only the interpreter's files (its `sys.path`, its prefixes' `lib` directories, the
//!    directories of the shared objects it maps, the system's library directories, the loader
//!    cache, time zones), read and write `/dev/null`, and read, write, create and remove files
//!    in its scratch directory (no executables, device nodes, FIFOs or sockets there). Every
//!    other path is refused (`EACCES`): no root-only file, no `/etc/passwd`, no write anywhere
//!    else; also no TCP bind or connect, no signals to processes outside the sandbox, no
//!    abstract UNIX sockets outside it (ABI 4 and 6). Where the kernel has no Landlock the tool
//!    says so in [`PythonSandbox::status`] and every call is [`ToolError::Unavailable`], unless
//!    [`PythonSandboxBuilder::allow_without_landlock`] opts out.
//! 4. *A private mount namespace* (where the kernel allows one; reported in the output data as
//!    `"mount_namespace"`): every mount read-only and `nosuid`, except the scratch directory,
//!    bind-mounted on itself writable (`nosuid`, `nodev`, `noexec`). Writes, `mknod` and
//!    `symlink` outside scratch fail with `EROFS` even without Landlock. When the sandbox user
//!    cannot search a directory above the interpreter (pyenv under `/root`, mode 700), a small
//!    tmpfs covers that directory in the namespace, holding only the path to the interpreter's
//!    own directories, bind-mounted there read-only: the interpreter keeps its path, the rest of
//!    `/root` is simply not there.
//! 5. *seccomp* (x86_64, aarch64): no new processes (`fork`, `vfork`, `clone` without
//!    `CLONE_THREAD`, `clone3`), no sockets (`socket`, `socketpair`), no device nodes or FIFOs
//!    (`mknod`, `mknodat`), no mounts (old and new API), namespaces, ptrace, bpf, io_uring,
//!    keyrings, modules, other ABIs (`EPERM`; other architectures' numbers kill the process).
//! 6. *No capabilities and `no_new_privs`*: as root, the capability bounding set is emptied and
//!    the securebits locked (`NOROOT`, no kept or ambient capabilities); then every set
//!    (effective, permitted, inheritable, ambient) is cleared and `no_new_privs` set, so no
//!    `exec` (not even of a set-uid file) gives any privilege back. When the host runs as root
//!    the program also runs as `nobody` (see [`RunAs`]), so file modes and `RLIMIT_NPROC` apply
//!    too; the mount namespace above makes an interpreter under `/root` reachable for it, where
//!    `CAP_DAC_READ_SEARCH` did before (gone). Only where neither works (no mount namespace)
//!    does the program keep uid 0, *without any capability*: file modes would then let it read
//!    root's files, Landlock and the read-only mounts do not.
//! 7. *A network namespace* (where the OS allows it): no network interface but a downed
//!    loopback.
//! 8. *Resource limits and a process group*: `RLIMIT_CPU`, `RLIMIT_AS`, `RLIMIT_FSIZE`,
//!    `RLIMIT_NOFILE`, `RLIMIT_NPROC` (enforced for users other than root) and `RLIMIT_CORE =
//!    0`; its own session, killed as a group at the end; a cleared environment; output read
//!    with a cap (a program that prints too much is killed as soon as it passes the cap).
//!
//! The Landlock ruleset is built in the parent (path descriptors opened there) with raw system
//! calls (`landlock_create_ruleset`, `landlock_add_rule` through `libc`, the rights masked by
//! the kernel's ABI), not with the `landlock` crate, whose `enumflags2` derive would bring a
//! second major of `syn` into the dependency graph (the project keeps one). Between `fork` and
//! `exec` the child makes raw system calls only (`landlock_restrict_self` on that descriptor,
//! `prctl`, `capset`, `mount`…), nothing that allocates, so the closure stays
//! async-signal-safe. The interpreter is probed once with the strongest combination the machine
//! accepts (seccomp, mount namespace, another user; Landlock whenever the kernel has it);
//! [`PythonSandbox::status`] reports what was found.
//!
//! The interpreter runs with `-I` (isolated mode: `PYTHON*` variables, the user site directory
//! and the script directory are ignored) and `-B`, but without `-S`, so that installed packages
//! such as sympy stay importable.
//!
//! Outcomes map onto [`ToolError`]: a refused program is [`ToolError::Refused`] (naming the
//! import or name and its line), an uncaught Python exception is [`ToolError::Failed`] (the
//! last lines of the traceback; an operation the kernel refused shows there as a
//! `PermissionError` or `OSError`), a CPU or wall-time overrun is [`ToolError::TimedOut`],
//! memory, output and process limits are [`ToolError::LimitExceeded`], and a missing
//! interpreter, or a kernel without Landlock, is [`ToolError::Unavailable`].
//!
//! The sandbox runs on Linux only. Built for another system (or with
//! `ORCHFLOW_AGENT_NO_SANDBOX=1`), the tool still checks its input, and every run is
//! [`ToolError::Unavailable`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), orchflow_agent::ToolError> {
//! use orchflow_agent::tools::code::PythonSandbox;
//!
//! let sandbox = PythonSandbox::new();
//! let out = sandbox.run("from math import comb\nprint(comb(10, 3))").await?;
//! assert_eq!(out.content.trim(), "120");
//! let refused = sandbox.run("import os").await.unwrap_err();
//! assert_eq!(refused.kind(), "refused");
//! # Ok(()) }
//! ```

#[cfg(orchflow_sandbox)]
mod caps;
#[cfg(orchflow_sandbox)]
mod child;
#[cfg(orchflow_sandbox)]
mod host;
#[cfg(orchflow_sandbox)]
mod landlock;
#[cfg(orchflow_sandbox)]
mod mounts;
#[cfg(orchflow_sandbox)]
mod seccomp;
// The sandbox needs Linux (process groups, rlimits, network namespaces, seccomp, setresuid):
// `build.rs` sets `orchflow_sandbox` there. Elsewhere every call is `ToolError::Unavailable`.
#[cfg_attr(orchflow_sandbox, path = "code/linux.rs")]
#[cfg_attr(not(orchflow_sandbox), path = "code/unsupported.rs")]
mod platform;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Tool, ToolError, ToolFuture, ToolOutput};

/// The tool's name, as the planner writes it.
const TOOL_NAME: &str = "code";

/// Modules a program may import by default (with their submodules). `sympy`, `numpy` and
/// `mpmath` are used when installed; importing one that is not installed fails like any
/// Python `ModuleNotFoundError`.
///
/// ```
/// use orchflow_agent::tools::code::{DEFAULT_ALLOWED_MODULES, PythonSandbox};
///
/// let extended = PythonSandbox::builder()
///     .allow_modules(DEFAULT_ALLOWED_MODULES.iter().copied().chain(["random"]))
///     .build();
/// assert!(extended.allowed_modules().iter().any(|m| m == "random"));
/// ```
pub const DEFAULT_ALLOWED_MODULES: &[&str] = &[
    "math",
    "cmath",
    "fractions",
    "decimal",
    "itertools",
    "functools",
    "collections",
    "statistics",
    "heapq",
    "bisect",
    "sympy",
    "numpy",
    "mpmath",
];

/// Submodules of allowed packages that a program may not import by default: they reach the
/// file system, a compiler, subprocesses or raw memory. [`PythonSandboxBuilder::deny_module`]
/// adds to them.
///
/// ```
/// assert!(orchflow_agent::tools::code::DEFAULT_DENIED_MODULES.contains(&"numpy.ctypeslib"));
/// ```
pub const DEFAULT_DENIED_MODULES: &[&str] = &[
    "numpy.ctypeslib",
    "numpy.distutils",
    "numpy.f2py",
    "numpy.testing",
    "sympy.external",
    "sympy.testing",
    "sympy.utilities.autowrap",
    "sympy.utilities.codegen",
    "sympy.utilities.runtests",
    "sympy.printing.preview",
    "mpmath.tests",
];

/// The limits of one run.
///
/// Fields are public; start from [`Default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use orchflow_agent::tools::code::SandboxLimits;
///
/// let tight = SandboxLimits {
///     cpu_time: Duration::from_secs(1),
///     wall_time: Duration::from_secs(2),
///     ..SandboxLimits::default()
/// };
/// assert_eq!(tight.memory_bytes, 512 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock time from start to finish; past it the process group is killed
    /// ([`ToolError::TimedOut`] with `what = "wall time"`). Default 10 s.
    pub wall_time: Duration,
    /// CPU time (`RLIMIT_CPU`), rounded up to whole seconds, at least 1 s
    /// ([`ToolError::TimedOut`] with `what = "CPU time"`). Default 5 s.
    pub cpu_time: Duration,
    /// Address space in bytes (`RLIMIT_AS`); includes the interpreter and loaded libraries
    /// ([`ToolError::LimitExceeded`] with `what = "memory"`). Default 512 MiB.
    pub memory_bytes: u64,
    /// Bytes of stdout and stderr together; past it the program is killed
    /// ([`ToolError::LimitExceeded`] with `what = "output"`, unless
    /// [`PythonSandboxBuilder::truncate_output`]). Default 64 KiB.
    pub output_bytes: usize,
    /// `RLIMIT_NPROC`: processes and threads of the sandbox's user, counted by the kernel over
    /// everything that user runs (so over concurrent calls too, and, when the host is not root
    /// and the user does not change, over the host's own threads). Not enforced for root, hence
    /// [`RunAs`]. New processes are refused anyway (audit hook, seccomp), so in practice this
    /// bounds threads ([`ToolError::LimitExceeded`] with `what = "processes"`). Default 16.
    pub max_processes: u64,
    /// Largest file the program may write into its scratch directory (`RLIMIT_FSIZE`).
    /// Default 1 MiB.
    pub file_size_bytes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`). Default 64.
    pub open_files: u64,
    /// Largest program accepted, in bytes ([`ToolError::InvalidInput`] beyond). Default 256 KiB.
    pub code_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            wall_time: Duration::from_secs(10),
            cpu_time: Duration::from_secs(5),
            memory_bytes: 512 * 1024 * 1024,
            output_bytes: 64 * 1024,
            max_processes: 16,
            file_size_bytes: 1024 * 1024,
            open_files: 64,
            code_bytes: 256 * 1024,
        }
    }
}

impl SandboxLimits {
    fn cpu_seconds(&self) -> u64 {
        let nanos = self.cpu_time.as_nanos();
        let secs = nanos.div_ceil(1_000_000_000);
        u64::try_from(secs).unwrap_or(u64::MAX).max(1)
    }
}

/// Which user the sandboxed interpreter runs as. Whatever the user, it holds no capability
/// (every set cleared, `no_new_privs`).
///
/// ```
/// use orchflow_agent::tools::code::{PythonSandbox, RunAs};
///
/// assert_eq!(RunAs::default(), RunAs::Auto);
/// let sandbox = PythonSandbox::builder().run_as(RunAs::User { uid: 65534, gid: 65534 }).build();
/// # let _ = sandbox;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunAs {
    /// When the host process is root, switch to `nobody` (uid and gid 65534), so that
    /// `RLIMIT_NPROC` applies and file modes keep root's files out of reach on top of Landlock.
    /// An interpreter installed where that user cannot search (e.g. under `/root`) is made
    /// reachable in the sandbox's mount namespace (see the [module docs](self)). Where that
    /// fails too, the interpreter keeps uid 0 but without any capability, confined by Landlock
    /// (recorded in the output data as `"privileges": "unchanged"`, `"capabilities": "none"`);
    /// `RLIMIT_NPROC` is then not enforced, though no process can be created anyway (seccomp).
    /// When the host process is not root, the user does not change.
    #[default]
    Auto,
    /// Never change user.
    Current,
    /// Like [`RunAs::Auto`] with this user and group instead of `nobody`.
    User {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
}

/// What [`PythonSandbox::status`] found out about this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    /// The interpreter's real executable.
    pub python: PathBuf,
    /// The kernel's Landlock ABI version; `None` when the kernel does not enforce Landlock.
    pub landlock_abi: Option<u32>,
    /// Whether programs run in a private mount namespace where everything but the scratch
    /// directory is read-only.
    pub mount_namespace: bool,
    /// Whether the seccomp filter is installed.
    pub seccomp: bool,
    /// Whether programs run as another, unprivileged user (see [`RunAs`]); either way they hold
    /// no capability.
    pub user_switched: bool,
    /// Why every call is refused ([`ToolError::Unavailable`]), if it is: no Landlock and no
    /// [`PythonSandboxBuilder::allow_without_landlock`].
    pub refusal: Option<String>,
}

/// Builds a [`PythonSandbox`].
///
/// ```
/// use std::time::Duration;
/// use orchflow_agent::tools::code::{PythonSandbox, RunAs, SandboxLimits};
/// use orchflow_agent::Tool;
///
/// let sandbox = PythonSandbox::builder()
///     .python("python3")
///     .allow_modules(["math", "fractions"])
///     .limits(SandboxLimits { cpu_time: Duration::from_secs(2), ..SandboxLimits::default() })
///     .build();
/// assert_eq!(sandbox.name(), "code");
/// assert_eq!(sandbox.allowed_modules(), ["math", "fractions"]);
///
/// // Every option, for reference.
/// let sandbox = PythonSandbox::builder()
///     .allow_module("sympy")
///     .deny_module("sympy.plotting")
///     .run_as(RunAs::Auto)
///     .isolate_network(true)
///     .seccomp(true)
///     .allow_without_landlock(false)
///     .truncate_output(true)
///     .scratch_root(std::env::temp_dir())
///     .build();
/// assert!(sandbox.description().contains("sympy"));
/// ```
#[derive(Debug, Clone)]
pub struct PythonSandboxBuilder {
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    python: PathBuf,
    allowed: Vec<String>,
    denied: Vec<String>,
    limits: SandboxLimits,
    run_as: RunAs,
    isolate_network: bool,
    seccomp: bool,
    truncate_output: bool,
    scratch_root: Option<PathBuf>,
    allow_without_landlock: bool,
    /// The static check and the run-time guards of the Python side (off only in tests that show
    /// what the kernel alone stops).
    python_guards: bool,
}

impl Default for PythonSandboxBuilder {
    fn default() -> Self {
        PythonSandboxBuilder {
            config: Config {
                python: PathBuf::from("python3"),
                allowed: DEFAULT_ALLOWED_MODULES
                    .iter()
                    .map(|m| (*m).to_string())
                    .collect(),
                denied: DEFAULT_DENIED_MODULES
                    .iter()
                    .map(|m| (*m).to_string())
                    .collect(),
                limits: SandboxLimits::default(),
                run_as: RunAs::Auto,
                isolate_network: true,
                seccomp: true,
                truncate_output: false,
                scratch_root: None,
                allow_without_landlock: false,
                python_guards: true,
            },
        }
    }
}

impl PythonSandboxBuilder {
    /// The interpreter: a path or a name looked up in `PATH` (default `python3`). It is resolved
    /// once, at the first call, to the real executable (`sys.executable`), so wrapper scripts
    /// such as pyenv shims work although the program itself runs with an empty environment.
    /// Python 3.8 or newer is required (audit hooks).
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.python = path.into();
        self
    }

    /// Replaces the allow-list of importable modules (each allows its submodules too). Names are
    /// dotted module names (`math`, `sympy.ntheory`); anything else never matches.
    pub fn allow_modules<I, S>(mut self, modules: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.allowed = modules.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one module (and its submodules) to the allow-list.
    pub fn allow_module(mut self, module: impl Into<String>) -> Self {
        self.config.allowed.push(module.into());
        self
    }

    /// Adds a module (and its submodules) that may not be imported even under an allowed
    /// package (see [`DEFAULT_DENIED_MODULES`]).
    pub fn deny_module(mut self, module: impl Into<String>) -> Self {
        self.config.denied.push(module.into());
        self
    }

    /// Sets all limits.
    pub fn limits(mut self, limits: SandboxLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Which user the interpreter runs as (default [`RunAs::Auto`]).
    pub fn run_as(mut self, run_as: RunAs) -> Self {
        self.config.run_as = run_as;
        self
    }

    /// Whether to put the interpreter in a new network namespace (default `true`). Where the OS
    /// refuses (no privilege, no user namespaces), the run goes on without one and the output
    /// data says `"network_isolated": false`; sockets stay refused by the audit hook and seccomp.
    pub fn isolate_network(mut self, on: bool) -> Self {
        self.config.isolate_network = on;
        self
    }

    /// Whether to install the seccomp filter (default `true`; ignored on architectures other
    /// than x86_64 and aarch64, and dropped automatically, with a warning, where the kernel
    /// refuses it).
    pub fn seccomp(mut self, on: bool) -> Self {
        self.config.seccomp = on;
        self
    }

    /// What happens when the output passes [`SandboxLimits::output_bytes`]: with `false` (the
    /// default) the call fails with [`ToolError::LimitExceeded`]; with `true` the program is
    /// still killed at once, but the call succeeds with the output so far and
    /// `"truncated": true` in its data.
    pub fn truncate_output(mut self, on: bool) -> Self {
        self.config.truncate_output = on;
        self
    }

    /// The directory under which per-call scratch directories are created (default: the
    /// system's temporary directory). It must be traversable by the sandbox user.
    pub fn scratch_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.scratch_root = Some(dir.into());
        self
    }

    /// Whether to run where the kernel does not enforce Landlock (default `false`: every call is
    /// then [`ToolError::Unavailable`], and [`PythonSandbox::status`] says why). Landlock is the
    /// sandbox's file-system boundary; without it, reads and writes outside the scratch directory
    /// are stopped only by the Python guards, the read-only mount namespace (where there is one)
    /// and the file permissions of the user the program runs as.
    pub fn allow_without_landlock(mut self, on: bool) -> Self {
        self.config.allow_without_landlock = on;
        self
    }

    /// Test support, not for production: `false` switches off the Python half of the sandbox
    /// (the static check, the import hook, the restricted builtins and the audit hook), so that a
    /// test can show what the kernel layers stop on their own. The switch lives in the host
    /// process and reaches the runner through its command line, out of the program's reach.
    #[doc(hidden)]
    pub fn python_guards_for_tests(mut self, on: bool) -> Self {
        self.config.python_guards = on;
        self
    }

    /// Builds the sandbox. Nothing is run yet: the interpreter is found and probed at the first
    /// call.
    pub fn build(self) -> PythonSandbox {
        let config = self.config;
        let l = &config.limits;
        let description = format!(
            "Runs a Python 3 program in a sandbox and returns what it prints (print the values \
             you need). Imports allowed: {}. No files outside a scratch directory, no network, \
             no subprocesses, no eval/exec/open. Limits: {} s CPU, {} s wall time, {} MiB \
             memory, {} KiB output.",
            config.allowed.join(", "),
            l.cpu_seconds(),
            l.wall_time.as_secs_f64(),
            l.memory_bytes / (1024 * 1024),
            l.output_bytes / 1024,
        );
        PythonSandbox {
            config,
            description,
            host: tokio::sync::OnceCell::new(),
        }
    }
}

/// The `code` tool: runs Python programs in a sandbox (see the [module docs](self)).
///
/// Input: `{"code": "<program>"}`, or the program as a bare JSON string. Output on success:
/// the program's stdout (and its stderr, after a `[stderr]` line, when there is any) as content,
/// and data `{exit_code, duration_ms, truncated, network_isolated, privileges, capabilities,
/// seccomp, landlock_abi, mount_namespace}`.
///
/// The interpreter is located and probed once, at the first call; the result (including
/// [`ToolError::Unavailable`] when there is no usable interpreter) is kept for the sandbox's
/// lifetime. Calls may run concurrently.
#[derive(Debug)]
pub struct PythonSandbox {
    config: Config,
    description: String,
    host: tokio::sync::OnceCell<Result<platform::Host, ToolError>>,
}

impl Default for PythonSandbox {
    fn default() -> Self {
        PythonSandbox::new()
    }
}

impl PythonSandbox {
    /// A sandbox with the default interpreter (`python3`), allow-list and limits.
    ///
    /// ```
    /// use orchflow_agent::tools::code::{PythonSandbox, SandboxLimits};
    ///
    /// let sandbox = PythonSandbox::new();
    /// assert_eq!(sandbox.limits(), &SandboxLimits::default());
    /// assert!(sandbox.allowed_modules().iter().any(|m| m == "math"));
    /// ```
    pub fn new() -> Self {
        PythonSandboxBuilder::default().build()
    }

    /// A builder, to choose the interpreter, allow-list and limits.
    pub fn builder() -> PythonSandboxBuilder {
        PythonSandboxBuilder::default()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &SandboxLimits {
        &self.config.limits
    }

    /// The modules a program may import (with their submodules).
    pub fn allowed_modules(&self) -> &[String] {
        &self.config.allowed
    }

    /// What the sandbox runs with on this machine: the interpreter, the kernel's Landlock ABI,
    /// whether there is a mount namespace, a seccomp filter, a user switch, and why it refuses to
    /// run when it does (no Landlock without [`PythonSandboxBuilder::allow_without_landlock`]).
    /// Finds and probes the interpreter if no call has yet.
    ///
    /// # Errors
    ///
    /// [`ToolError::Unavailable`] when no usable interpreter was found or the sandbox cannot run
    /// on this system at all.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), orchflow_agent::ToolError> {
    /// let status = orchflow_agent::tools::code::PythonSandbox::new().status().await?;
    /// if let Some(why) = &status.refusal {
    ///     eprintln!("the code tool will not run: {why}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<SandboxStatus, ToolError> {
        platform::status(&self.config, &self.host).await
    }

    /// Runs `code` and returns what it printed.
    ///
    /// # Errors
    ///
    /// [`ToolError::InvalidInput`] for an empty program, one with NUL bytes or one larger than
    /// [`SandboxLimits::code_bytes`]; [`ToolError::Refused`] when the static check or a run-time
    /// guard refuses it; [`ToolError::Failed`] for a syntax error, an uncaught exception or a
    /// non-zero exit; [`ToolError::TimedOut`] / [`ToolError::LimitExceeded`] when a limit
    /// stopped it; [`ToolError::Unavailable`] when no usable Python interpreter was found or
    /// the sandbox could not be set up.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use orchflow_agent::tools::code::PythonSandbox;
    ///
    /// let sandbox = PythonSandbox::new();
    /// let err = sandbox.run("while True: pass").await.unwrap_err();
    /// assert_eq!(err.kind(), "timed_out");
    /// # }
    /// ```
    pub async fn run(&self, code: &str) -> Result<ToolOutput, ToolError> {
        let limits = &self.config.limits;
        if code.trim().is_empty() {
            return Err(invalid("the program is empty"));
        }
        if code.len() > limits.code_bytes {
            return Err(invalid(format!(
                "the program is {} bytes long; the limit is {} bytes",
                code.len(),
                limits.code_bytes
            )));
        }
        if code.contains('\0') {
            return Err(invalid("the program contains a NUL byte"));
        }
        platform::run(&self.config, &self.host, code).await
    }
}

impl Tool for PythonSandbox {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "A complete Python 3 program; print the results you need."
                }
            },
            "required": ["code"]
        })
    }

    fn call<'a>(&'a self, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move {
            let code = program_from(input)?;
            self.run(code).await
        })
    }
}

/// The program in a tool input: `{"code": "..."}` or a bare string.
fn program_from(input: &Value) -> Result<&str, ToolError> {
    match input {
        Value::String(code) => Ok(code),
        Value::Object(fields) => match fields.get("code") {
            Some(Value::String(code)) => Ok(code),
            Some(other) => Err(invalid(format!(
                "`code` must be a string, found {}",
                super::json_kind(other)
            ))),
            None => Err(invalid(
                "missing field `code`: expected {\"code\": \"<python program>\"}",
            )),
        },
        other => Err(invalid(format!(
            "expected {{\"code\": \"<python program>\"}} or a string, found {}",
            super::json_kind(other)
        ))),
    }
}

fn invalid(reason: impl Into<String>) -> ToolError {
    ToolError::InvalidInput {
        tool: TOOL_NAME.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built without the sandbox (not Linux, or `ORCHFLOW_AGENT_NO_SANDBOX=1`): input is still
    /// checked, then every call is `Unavailable`, saying why.
    #[cfg(not(orchflow_sandbox))]
    #[tokio::test]
    async fn without_the_sandbox_every_call_is_unavailable() {
        let sandbox = PythonSandbox::new();
        assert_eq!(sandbox.run(" ").await.unwrap_err().kind(), "invalid_input");
        let err = sandbox.run("print(1)").await.unwrap_err();
        assert_eq!(err.kind(), "unavailable");
        assert!(err.to_string().contains("needs Linux"), "{err}");
        let via_tool = sandbox
            .call(&json!({"code": "print(1)"}))
            .await
            .unwrap_err();
        assert_eq!(via_tool.kind(), "unavailable");
        assert_eq!(sandbox.status().await.unwrap_err().kind(), "unavailable");
    }

    #[test]
    fn input_forms() {
        assert_eq!(
            program_from(&json!({"code": "print(1)"})).unwrap(),
            "print(1)"
        );
        assert_eq!(program_from(&json!("print(2)")).unwrap(), "print(2)");
        assert_eq!(
            program_from(&json!({"code": 3})).unwrap_err().kind(),
            "invalid_input"
        );
        assert_eq!(
            program_from(&json!({})).unwrap_err().kind(),
            "invalid_input"
        );
        assert_eq!(
            program_from(&json!(null)).unwrap_err().kind(),
            "invalid_input"
        );
    }

    #[test]
    fn cpu_seconds_round_up() {
        let l = |ms| SandboxLimits {
            cpu_time: Duration::from_millis(ms),
            ..SandboxLimits::default()
        };
        assert_eq!(l(0).cpu_seconds(), 1);
        assert_eq!(l(1000).cpu_seconds(), 1);
        assert_eq!(l(1001).cpu_seconds(), 2);
    }
}
