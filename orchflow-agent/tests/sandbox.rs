//! Hostile inputs for the `code` tool ([`PythonSandbox`]): each must end in a clear
//! [`ToolError`], leave the host unharmed, and leave the sandbox usable for the next call.
//!
//! Limits are tight so the whole file runs in a few seconds, except for programs that import
//! sympy or numpy: those run in [`library_sandbox`], whose limits no loaded machine reaches (a
//! CI test must not depend on the machine being idle). Tests that need Python skip (with a note
//! on stderr) when no `python3` is installed; sympy/numpy tests skip when those are missing.
//!
//! The `kernel_*` tests switch the Python guards off (a test-only switch) and show what the
//! kernel layers stop on their own: Landlock, the read-only mount namespace, seccomp, no
//! capabilities. Each was seen to fail with those layers disabled.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use orchflow_agent::tools::code::{PythonSandbox, RunAs, SandboxLimits};
use orchflow_agent::{Tool, ToolError, ToolOutput};
use serde_json::json;

/// Tight limits: 1 s CPU, 256 MiB, 16 KiB of output (and a wall time that a loaded machine
/// does not reach before the CPU limit).
fn tight_limits() -> SandboxLimits {
    SandboxLimits {
        wall_time: Duration::from_secs(10),
        cpu_time: Duration::from_secs(1),
        memory_bytes: 256 * 1024 * 1024,
        output_bytes: 16 * 1024,
        ..SandboxLimits::default()
    }
}

/// One shared sandbox (the interpreter is probed once for all tests).
fn sandbox() -> &'static PythonSandbox {
    static SANDBOX: OnceLock<PythonSandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| PythonSandbox::builder().limits(tight_limits()).build())
}

/// Limits for programs that import sympy or numpy: an import alone can take more than a second
/// of CPU on a loaded machine, so CPU and wall time are far beyond what the programs need.
fn library_sandbox() -> &'static PythonSandbox {
    static SANDBOX: OnceLock<PythonSandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        PythonSandbox::builder()
            .limits(SandboxLimits {
                wall_time: Duration::from_secs(300),
                cpu_time: Duration::from_secs(120),
                memory_bytes: 1024 * 1024 * 1024,
                ..tight_limits()
            })
            .build()
    })
}

/// The sandbox without its Python half: only the kernel layers stand (test-only switch).
fn unguarded() -> &'static PythonSandbox {
    static SANDBOX: OnceLock<PythonSandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| unguarded_builder().build())
}

/// The Python half off, with room for the interpreter's start on a loaded machine.
fn unguarded_builder() -> orchflow_agent::tools::code::PythonSandboxBuilder {
    PythonSandbox::builder()
        .limits(SandboxLimits {
            wall_time: Duration::from_secs(60),
            cpu_time: Duration::from_secs(20),
            ..tight_limits()
        })
        .python_guards_for_tests(false)
}

/// Like [`unguarded`], but without a user switch: when the tests run as root the program keeps
/// uid 0 (with no capability), so file modes would let it read root's files and only the
/// kernel's sandbox layers stop it.
fn unguarded_same_user() -> &'static PythonSandbox {
    static SANDBOX: OnceLock<PythonSandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| unguarded_builder().run_as(RunAs::Current).build())
}

/// `None` (and a note) when there is no usable Python, or the kernel has no Landlock (the
/// sandbox then refuses every call; `status_reports_the_kernel_layers` checks that): the test
/// is skipped. Any other failure of a trivial program is a broken sandbox, not a reason to skip.
async fn python() -> Option<&'static PythonSandbox> {
    match sandbox().run("print('ready')").await {
        Ok(_) => Some(sandbox()),
        Err(ToolError::Unavailable { reason })
            if reason.contains("no Python interpreter")
                || reason.contains("not a usable Python")
                || reason.contains("does not enforce Landlock") =>
        {
            eprintln!("skipped: {reason}");
            None
        }
        Err(other) => panic!("a trivial program failed: {other:?}"),
    }
}

fn data(out: &ToolOutput) -> &serde_json::Value {
    out.data
        .as_ref()
        .expect("the code tool always returns data")
}

fn refused_reason(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn limit_what(result: &Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::LimitExceeded { what, .. }) => what.clone(),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

fn timeout_what(result: &Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::TimedOut { what, .. }) => what.clone(),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

async fn module_installed(sandbox: &PythonSandbox, module: &str) -> bool {
    match sandbox.run(&format!("import {module}")).await {
        Ok(_) => true,
        Err(ToolError::Failed { message }) if message.contains("ModuleNotFoundError") => {
            eprintln!("skipped: {module} is not installed");
            false
        }
        Err(other) => panic!("importing {module}: {other:?}"),
    }
}

#[tokio::test]
async fn simple_arithmetic_prints() {
    let Some(sb) = python().await else { return };
    let out = sb
        .run("from fractions import Fraction\nprint(2 ** 10, sum(range(101)), Fraction(1, 3) + 1)")
        .await
        .unwrap();
    assert_eq!(out.content, "1024 5050 4/3\n");
    // Big integers print in full (no int/str digit limit; the CPU limit bounds the work).
    let out = sb.run("print(len(str(2 ** 100000)))").await.unwrap();
    assert_eq!(out.content, "30103\n");
    let d = data(&out);
    eprintln!("sandbox data: {d}");
    assert_eq!(d["exit_code"], 0);
    assert_eq!(d["truncated"], false);
    assert!(d["duration_ms"].is_u64());
    assert!(d["network_isolated"].is_boolean());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root can always make a network namespace: the program had no network at all.
        assert_eq!(d["network_isolated"], true, "{d}");
    }
}

#[tokio::test]
async fn tool_interface_accepts_object_or_bare_string() {
    let Some(sb) = python().await else { return };
    assert_eq!(sb.name(), "code");
    assert_eq!(sb.input_schema()["required"], json!(["code"]));
    assert!(sb.description().contains("math"));
    let out = sb.call(&json!({"code": "print(6 * 7)"})).await.unwrap();
    assert_eq!(out.content.trim(), "42");
    let out = sb.call(&json!("print(6 * 7)")).await.unwrap();
    assert_eq!(out.content.trim(), "42");
    for bad in [
        json!({"code": 1}),
        json!({"program": "print(1)"}),
        json!(null),
        json!({"code": "  "}),
    ] {
        let err = sb.call(&bad).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn sympy_and_numpy_work_when_installed() {
    let Some(_) = python().await else { return };
    let sb = library_sandbox();
    if module_installed(sb, "sympy").await {
        let out = sb
            .run(
                "import sympy as sp\nx = sp.symbols('x')\n\
                 print(sp.factor(x**2 - 1), sp.factorint(2**32 + 1), sp.solve(x**2 - 4, x))\n\
                 print(sp.lambdify(x, x**2)(3), sp.sympify('x + 1').subs(x, 2))",
            )
            .await
            .unwrap();
        assert!(
            out.content
                .starts_with("(x - 1)*(x + 1) {641: 1, 6700417: 1} [-2, 2]\n9 3"),
            "{}",
            out.content
        );
    }
    if module_installed(sb, "numpy").await {
        let out = sb
            .run("import numpy as np\nprint(int(np.arange(10).sum()), np.linalg.det(np.eye(3)))")
            .await
            .unwrap();
        assert!(out.content.starts_with("45 1.0"), "{}", out.content);
    }
}

#[tokio::test]
async fn infinite_loop_hits_the_cpu_limit() {
    let Some(sb) = python().await else { return };
    let started = Instant::now();
    let result = sb.run("while True:\n    pass").await;
    assert_eq!(timeout_what(&result), "CPU time");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn busy_loop_hits_the_wall_time_limit() {
    let Some(_) = python().await else { return };
    let sb = PythonSandbox::builder()
        .limits(SandboxLimits {
            wall_time: Duration::from_secs(1),
            cpu_time: Duration::from_secs(10),
            ..tight_limits()
        })
        .build();
    let started = Instant::now();
    let result = sb.run("n = 0\nwhile True:\n    n += 1").await;
    assert_eq!(timeout_what(&result), "wall time");
    assert!(matches!(
        result,
        Err(ToolError::TimedOut { limit_ms: 1000, .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn memory_bombs_hit_the_memory_limit() {
    if python().await.is_none() {
        return;
    }
    // Only the memory limit is tight: on a loaded machine, faulting in 256 MiB a megabyte at a
    // time can take more than the shared sandbox's second of CPU, and the bombs must meet the
    // memory limit, not the CPU one.
    let sb = PythonSandbox::builder()
        .limits(SandboxLimits {
            cpu_time: Duration::from_secs(20),
            wall_time: Duration::from_secs(30),
            ..tight_limits()
        })
        .build();
    for bomb in [
        "x = 'a' * 10**10",
        "x = [0] * 10**10",
        "x = []\nwhile True:\n    x.append(bytearray(10**6))",
        "x = bytearray(10**10)",
    ] {
        let result = sb.run(bomb).await;
        assert_eq!(limit_what(&result), "memory", "{bomb}");
    }
    // So little memory that the interpreter itself cannot start: still a memory error.
    for mib in [8, 16] {
        let sb = PythonSandbox::builder()
            .limits(SandboxLimits {
                memory_bytes: mib * 1024 * 1024,
                ..tight_limits()
            })
            .build();
        let result = sb.run("print(1)").await;
        assert_eq!(limit_what(&result), "memory", "{mib} MiB");
    }
}

#[tokio::test]
async fn escape_gadgets_are_refused_with_the_name_and_line() {
    let Some(sb) = python().await else { return };
    let cases: &[(&str, &str)] = &[
        ("import os", "`os`"),
        ("import subprocess", "`subprocess`"),
        ("import socket", "`socket`"),
        ("import sys", "`sys`"),
        ("import ctypes", "`ctypes`"),
        ("import importlib", "`importlib`"),
        ("from os import system", "`os`"),
        ("from os.path import join", "`os.path`"),
        ("import numpy.ctypeslib", "numpy.ctypeslib"),
        ("import collections, shutil", "`shutil`"),
        ("__import__('os')", "`__import__`"),
        ("eval(\"__import__('os')\")", "`eval`"),
        ("exec('import os')", "`exec`"),
        ("compile('1', 'f', 'eval')", "`compile`"),
        ("getattr(__builtins__, '__import__')", "__builtins__"),
        ("().__class__.__bases__[0].__subclasses__()", "__class__"),
        ("(lambda: 0).__globals__", "__globals__"),
        ("open('/etc/passwd').read()", "`open`"),
        ("globals()['x'] = 1", "`globals`"),
        ("locals()", "`locals`"),
        ("vars()", "`vars`"),
        ("breakpoint()", "`breakpoint`"),
        ("input()", "`input`"),
        ("print('{0.__class__}'.format(1))", "__class__"),
        ("import statistics\nstatistics.sys.modules['os']", "`sys`"),
        ("import random", "`random`"),
        ("def g():\n    yield 1\ng().gi_frame.f_back", "gi_frame"),
        ("from math import *\nprint(sys)", "`sys`"),
        ("import math\nmath._private", "`_private`"),
        // A chain of plain attributes from an allowed module to the real builtins.
        (
            "import fractions\nfractions.re.enum.bltns.eval('1')",
            "`bltns`",
        ),
        (
            "import collections.abc\nprint(collections.abc.Iterable)\nimport pty",
            "`pty`",
        ),
    ];
    for (program, needle) in cases {
        let reason = refused_reason(sb.run(program).await);
        assert!(reason.contains(needle), "{program:?}: {reason}");
        assert!(reason.contains("line "), "{program:?}: {reason}");
    }
    let reason = refused_reason(sb.run("x = 1\ny = 2\nimport os").await);
    assert!(reason.contains("line 3"), "{reason}");
}

#[tokio::test]
async fn runtime_guards_catch_what_the_static_check_cannot_see() {
    let Some(sb) = python().await else { return };
    // A dunder name built at run time.
    let reason = refused_reason(
        sb.run("g = getattr\nu = '_' * 2\ncls = g((), u + 'class' + u)")
            .await,
    );
    assert!(
        reason.contains("__class__") && reason.contains("line 3"),
        "{reason}"
    );
    // A frame attribute built at run time.
    let reason = refused_reason(
        sb.run("def f():\n    yield 1\nprint(getattr(f(), 'gi_' + 'frame'))")
            .await,
    );
    assert!(reason.contains("gi_frame"), "{reason}");
}

#[tokio::test]
async fn fork_bombs_are_refused() {
    let Some(sb) = python().await else { return };
    let reason = refused_reason(sb.run("import os\nwhile True:\n    os.fork()").await);
    assert!(reason.contains("`os`"), "{reason}");
    let reason = refused_reason(
        sb.run("from multiprocessing import Pool\nPool(64).map(abs, range(10**6))")
            .await,
    );
    assert!(reason.contains("multiprocessing"), "{reason}");
    // Through code that a library evaluates from a string (sympy's lambdify), past the static
    // check: the run-time guards refuse it.
    let sb = library_sandbox();
    if module_installed(sb, "sympy").await {
        let program = "import sympy\n\
            f = sympy.lambdify([], \"__import__('fractions').sys.modules['posix'].fork()\")\n\
            f()";
        let reason = refused_reason(sb.run(program).await);
        assert!(reason.contains("os.fork"), "{reason}");
        let program = "import sympy\nsympy.sympify(\"eval(\\\"__import__('os')\\\")\")";
        let reason = refused_reason(sb.run(program).await);
        assert!(reason.contains("`os`"), "{reason}");
    }
}

#[tokio::test]
async fn huge_output_is_cut_off_promptly() {
    let Some(sb) = python().await else { return };
    // An endless stream of lines: killed as soon as 16 KiB are passed.
    let started = Instant::now();
    let result = sb.run("while True:\n    print('x' * 1000)").await;
    assert_eq!(limit_what(&result), "output");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // 100 MB in one print.
    let result = sb.run("print('x' * 10**8)").await;
    assert_eq!(limit_what(&result), "output");
    // A gigabyte: the string alone is beyond the memory limit; either way no gigabyte is
    // buffered anywhere.
    let result = sb.run("print('x' * 10**9)").await;
    let what = limit_what(&result);
    assert!(what == "memory" || what == "output", "{what}");
}

#[tokio::test]
async fn truncating_mode_returns_the_head_of_the_output() {
    let Some(_) = python().await else { return };
    let sb = PythonSandbox::builder()
        .limits(SandboxLimits {
            output_bytes: 1000,
            ..tight_limits()
        })
        .truncate_output(true)
        .build();
    let out = sb
        .run("for i in range(10**7):\n    print(i)")
        .await
        .unwrap();
    let d = data(&out);
    assert_eq!(d["truncated"], true);
    assert!(d["exit_code"].is_null());
    assert!(out.content.starts_with("0\n1\n2\n"));
    assert!(out.content.len() < 1200, "{}", out.content.len());
    assert!(
        out.content
            .ends_with("[output truncated: the program was stopped]")
    );
}

#[tokio::test]
async fn nothing_can_be_written_outside_the_scratch_directory() {
    let Some(sb) = python().await else { return };
    let target = std::env::temp_dir().join(format!("orchflow-escape-{}", std::process::id()));
    let path = target.display().to_string();
    let attempts = [
        format!("open({path:?}, 'w').write('x')"),
        format!("import pathlib\npathlib.Path({path:?}).write_text('x')"),
        format!("import io\nio.open({path:?}, 'w').write('x')"),
        format!("import shutil\nshutil.copy('/etc/hostname', {path:?})"),
    ];
    for program in &attempts {
        let err = sb.run(program).await.unwrap_err();
        assert_eq!(err.kind(), "refused", "{program}: {err:?}");
    }
    let sb = library_sandbox();
    if module_installed(sb, "sympy").await {
        // Past the static check, through lambdify: the audit hook refuses the write.
        let program =
            format!("import sympy\nsympy.lambdify([], \"open('{path}', 'w').write('x')\")()");
        let reason = refused_reason(sb.run(&program).await);
        assert!(reason.contains("writing"), "{reason}");
        let reason = refused_reason(
            sb.run("import sympy\nsympy.lambdify([], \"open('/etc/passwd').read()\")()")
                .await,
        );
        assert!(reason.contains("reading `/etc/passwd`"), "{reason}");
    }
    assert!(!target.exists(), "{} was written", target.display());
}

#[tokio::test]
async fn scratch_directories_are_removed() {
    let Some(_) = python().await else { return };
    let root = tempfile::tempdir().unwrap();
    let sb = PythonSandbox::builder()
        .limits(tight_limits())
        .scratch_root(root.path())
        .build();
    sb.run("print(1)").await.unwrap();
    let _ = sb.run("while True: pass").await.unwrap_err();
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn syntax_errors_and_exceptions_fail_with_a_message() {
    let Some(sb) = python().await else { return };
    match sb.run("def f(:\n    pass").await {
        Err(ToolError::Failed { message }) => {
            assert!(
                message.contains("SyntaxError") && message.contains("line 1"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match sb.run("print('before')\nx = 1\ny = x / 0").await {
        Err(ToolError::Failed { message }) => {
            assert!(
                message.contains("ZeroDivisionError: division by zero"),
                "{message}"
            );
            assert!(message.contains("line 3"), "{message}");
            assert!(
                message.contains("[stdout before the error]\nbefore"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match sb.run("raise SystemExit(3)").await {
        Err(ToolError::Failed { message }) => assert!(message.contains("status 3"), "{message}"),
        other => panic!("{other:?}"),
    }
    match sb.run("raise SystemExit('no solution found')").await {
        Err(ToolError::Failed { message }) => {
            assert!(message.contains("status 1: no solution found"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Exiting with status 0 is a success.
    assert!(sb.run("print('bye')\nraise SystemExit(0)").await.is_ok());
}

#[tokio::test]
async fn the_sandbox_keeps_working_after_failures() {
    let Some(sb) = python().await else { return };
    assert_eq!(sb.run("import os").await.unwrap_err().kind(), "refused");
    assert_eq!(sb.run("1/0").await.unwrap_err().kind(), "failed");
    assert_eq!(
        sb.run("x = [0] * 10**10").await.unwrap_err().kind(),
        "limit_exceeded"
    );
    assert_eq!(
        sb.run("while True: pass").await.unwrap_err().kind(),
        "timed_out"
    );
    let out = sb
        .run("import math\nprint(math.factorial(20))")
        .await
        .unwrap();
    assert_eq!(out.content.trim(), "2432902008176640000");
}

#[tokio::test]
async fn missing_interpreter_is_unavailable() {
    let sb = PythonSandbox::builder()
        .python("/nonexistent/bin/python3")
        .build();
    match sb.run("print(1)").await {
        Err(ToolError::Unavailable { reason }) => {
            assert!(reason.contains("/nonexistent/bin/python3"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// `RLIMIT_NPROC` holds when the sandbox runs as an unprivileged user: a program that starts
/// many threads (allowed here on purpose) is stopped with a process-limit error.
#[tokio::test]
async fn process_limit_applies_to_the_sandbox_user() {
    let Some(_) = python().await else { return };
    let sb = PythonSandbox::builder()
        .limits(SandboxLimits {
            max_processes: 4,
            ..tight_limits()
        })
        .allow_module("threading")
        .build();
    let out = sb.run("print(1)").await.unwrap();
    // SAFETY: geteuid has no preconditions.
    if data(&out)["privileges"] == "unchanged" && unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: the sandbox runs as root, for which RLIMIT_NPROC is not enforced");
        return;
    }
    let program = "import threading\n\
        stop = threading.Event()\n\
        for _ in range(64):\n    threading.Thread(target=stop.wait, daemon=True).start()";
    let result = sb.run(program).await;
    assert_eq!(limit_what(&result), "processes");
    // The host's own thread creation is unaffected.
    std::thread::spawn(|| ()).join().unwrap();
}

#[tokio::test]
async fn input_limits_are_checked_before_running() {
    let Some(sb) = python().await else { return };
    let big = "x = 1\n".repeat(100_000);
    assert_eq!(sb.run(&big).await.unwrap_err().kind(), "invalid_input");
    assert_eq!(
        sb.run("print(1)\0").await.unwrap_err().kind(),
        "invalid_input"
    );
    // Deep nesting is refused or fails to parse; it never crashes the host.
    let deep = format!("x = {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = sb.run(&deep).await.unwrap_err();
    assert!(matches!(err.kind(), "failed" | "refused"), "{err:?}");
    assert!(Path::new(&std::env::temp_dir()).exists());
}

/// When the host is root, the program runs as `nobody`, in its scratch directory, with an empty
/// environment (`os` is allowed here on purpose, to look).
#[tokio::test]
async fn the_program_runs_unprivileged_in_its_scratch_directory() {
    let Some(_) = python().await else { return };
    let sb = PythonSandbox::builder()
        .limits(tight_limits())
        .allow_module("os")
        .build();
    let out = sb
        .run("import os\nprint(os.getuid(), os.getgid())\nprint(os.getcwd())\nprint(sorted(os.environ))")
        .await
        .unwrap();
    let lines: Vec<&str> = out.content.lines().collect();
    if data(&out)["privileges"] != "unchanged" {
        assert_eq!(lines[0], "65534 65534");
    }
    assert!(lines[1].contains("orchflow-code-"), "{}", lines[1]);
    assert!(!lines[2].contains("CARGO"), "{}", lines[2]);
    // Even with `os` importable, the audit hook refuses what matters.
    for (program, needle) in [
        ("import os\nos.execl('/bin/true', 'true')", "os.exec"),
        ("import os\nos.posix_spawn", "posix_spawn"),
        ("import os\nos.kill(1, 9)", "os.kill"),
        ("import os\nos.listdir('/root')", "listing"),
        ("import os\nos.remove('/etc/hostname')", "os.remove"),
    ] {
        let reason = refused_reason(sb.run(program).await);
        assert!(reason.contains(needle), "{program}: {reason}");
    }
}

/// Dropping a call (the agent gave up on it) kills the program and removes its scratch
/// directory.
#[tokio::test]
async fn a_cancelled_call_leaves_nothing_behind() {
    let Some(_) = python().await else { return };
    let root = tempfile::tempdir().unwrap();
    let sb = PythonSandbox::builder()
        .limits(SandboxLimits {
            cpu_time: Duration::from_secs(10),
            wall_time: Duration::from_secs(10),
            ..tight_limits()
        })
        .scratch_root(root.path())
        .build();
    sb.run("print(1)").await.unwrap();
    let cancelled =
        tokio::time::timeout(Duration::from_millis(500), sb.run("while True:\n    pass")).await;
    assert!(cancelled.is_err(), "the loop cannot finish");
    let running_there = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path().join("cwd")).ok())
            .filter(|cwd| cwd.starts_with(root.path()))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while running_there() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running_there(), 0, "the program survived its call");
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs `program` in [`unguarded`] and returns its stdout; the program reports each attempt
/// itself (`blocked <errno>` or `escaped`).
async fn run_unguarded(program: &str) -> String {
    run_in(unguarded(), program).await
}

async fn run_in(sandbox: &PythonSandbox, program: &str) -> String {
    match sandbox.run(program).await {
        Ok(out) => {
            eprintln!("{}", out.content);
            out.content
        }
        Err(other) => panic!("{program}\n-> {other:?}"),
    }
}

/// `try: <attempt>; print("escaped <label>") except OSError: print("blocked <label> <errno>")`
fn attempt(label: &str, statement: &str) -> String {
    format!(
        "try:\n    {statement}\n    print('escaped {label}')\nexcept OSError as e:\n    \
         print('blocked {label}', e.errno)\n"
    )
}

fn assert_all_blocked(output: &str, labels: &[&str]) {
    assert!(!output.contains("escaped"), "{output}");
    for label in labels {
        assert!(
            output.contains(&format!("blocked {label} ")),
            "{label} not attempted:\n{output}"
        );
    }
}

/// A file only its owner may read (mode 0600, in a 0700 directory), outside any scratch
/// directory; owned by root when the tests run as root.
fn owner_only_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.txt");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b"TOP-SECRET-CONTENT").unwrap();
    (dir, path)
}

/// A directory anyone may write into (mode 0777), outside any scratch directory: only the
/// sandbox can stop a write there.
fn world_writable_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Where the kernel has Landlock, the sandbox says so and runs; where it has not, it says why it
/// refuses, and refuses.
#[tokio::test]
async fn status_reports_the_kernel_layers() {
    let status = match unguarded().status().await {
        Ok(status) => status,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    eprintln!("sandbox status: {status:?}");
    match status.landlock_abi {
        Some(abi) => {
            assert!(abi >= 1);
            assert_eq!(status.refusal, None);
        }
        None => {
            let why = status.refusal.clone().unwrap_or_default();
            assert!(why.contains("allow_without_landlock"), "{why}");
            let err = unguarded().run("print(1)").await.unwrap_err();
            assert_eq!(err.kind(), "unavailable");
            return;
        }
    }
    let out = unguarded().run("print(1)").await.unwrap();
    assert_eq!(data(&out)["capabilities"], "none");
    assert_eq!(data(&out)["landlock_abi"], json!(status.landlock_abi));
    assert_eq!(data(&out)["mount_namespace"], status.mount_namespace);
}

#[tokio::test]
async fn kernel_alone_stops_reading_an_owner_only_file() {
    let Some(_) = python().await else { return };
    let (dir, secret) = owner_only_file();
    let path = secret.display().to_string();
    let dir_path = dir.path().display().to_string();
    let program = [
        "import os\n".to_string(),
        attempt("open", &format!("print(open({path:?}).read())")),
        attempt(
            "os.open",
            &format!("print(os.read(os.open({path:?}, os.O_RDONLY), 100))"),
        ),
        attempt("listdir", &format!("print(os.listdir({dir_path:?}))")),
        attempt("passwd", "print(open('/etc/passwd').read()[:20])"),
    ]
    .concat();
    for sandbox in [unguarded(), unguarded_same_user()] {
        let output = run_in(sandbox, &program).await;
        assert_all_blocked(&output, &["open", "os.open", "listdir", "passwd"]);
        assert!(!output.contains("TOP-SECRET"), "{output}");
    }
}

#[tokio::test]
async fn kernel_alone_stops_writing_outside_the_scratch_directory() {
    let Some(_) = python().await else { return };
    let outside = world_writable_dir();
    let target = outside.path().join("written.txt");
    let path = target.display().to_string();
    let dir_path = outside.path().display().to_string();
    let program = [
        "import os\n".to_string(),
        attempt("open", &format!("open({path:?}, 'w').write('x')")),
        attempt(
            "os.open",
            &format!("os.open({path:?}, os.O_WRONLY | os.O_CREAT, 0o644)"),
        ),
        attempt("mkdir", &format!("os.mkdir({dir_path:?} + '/sub')")),
        attempt(
            "symlink",
            &format!("os.symlink('/etc/passwd', {dir_path:?} + '/link')"),
        ),
        attempt("tmp", "open('/tmp/orchflow-escape-probe', 'w').write('x')"),
        // The scratch directory (the working directory) stays writable.
        "open('inside.txt', 'w').write('ok')\nprint('inside', open('inside.txt').read())\n"
            .to_string(),
    ]
    .concat();
    let output = run_unguarded(&program).await;
    assert_all_blocked(&output, &["open", "os.open", "mkdir", "symlink", "tmp"]);
    assert!(output.contains("inside ok"), "{output}");
    let left: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Issue 11, first escape: an `os` module handed out by a library's evaluator, and `os.mknod` /
/// `os.mkfifo`, which have no audit event. With the guards off the program has `os` outright;
/// with them on, sympy's evaluator route is refused.
#[tokio::test]
async fn kernel_alone_stops_mknod_and_mkfifo() {
    let Some(_) = python().await else { return };
    let outside = world_writable_dir();
    let dir_path = outside.path().display().to_string();
    let program = [
        "import os, stat\n".to_string(),
        attempt("mkfifo", &format!("os.mkfifo({dir_path:?} + '/fifo')")),
        attempt(
            "mknod-fifo",
            &format!("os.mknod({dir_path:?} + '/node', 0o600 | stat.S_IFIFO)"),
        ),
        attempt(
            "mknod-file",
            &format!("os.mknod({dir_path:?} + '/file', 0o600 | stat.S_IFREG)"),
        ),
        attempt(
            "mknod-char",
            &format!("os.mknod({dir_path:?} + '/null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))"),
        ),
        // Not even in the scratch directory: no device nodes or FIFOs at all.
        attempt("mkfifo-scratch", "os.mkfifo('fifo')"),
    ]
    .concat();
    let output = run_unguarded(&program).await;
    assert_all_blocked(
        &output,
        &[
            "mkfifo",
            "mknod-fifo",
            "mknod-file",
            "mknod-char",
            "mkfifo-scratch",
        ],
    );
    let sb = library_sandbox();
    if module_installed(sb, "sympy").await {
        let program = format!(
            "import sympy\nsympy.lambdify([], \"__import__('os').mkfifo('{dir_path}/fifo2')\")()"
        );
        let err = sb.run(&program).await.unwrap_err();
        assert_eq!(err.kind(), "refused", "{err:?}");
    }
    let left: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn kernel_alone_stops_sockets() {
    let Some(_) = python().await else { return };
    let program = [
        "import socket\n".to_string(),
        attempt("inet", "socket.socket(socket.AF_INET, socket.SOCK_STREAM)"),
        attempt("inet6", "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)"),
        attempt("unix", "socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)"),
        attempt("pair", "socket.socketpair()"),
        attempt(
            "connect",
            "socket.create_connection(('127.0.0.1', 9), timeout=1)",
        ),
    ]
    .concat();
    let output = run_unguarded(&program).await;
    assert_all_blocked(&output, &["inet", "inet6", "unix", "pair", "connect"]);
}

#[tokio::test]
async fn kernel_alone_stops_forking() {
    let Some(_) = python().await else { return };
    let program = [
        "import os, subprocess\n".to_string(),
        attempt(
            "fork",
            "pid = os.fork()\n    if pid == 0:\n        os._exit(0)",
        ),
        attempt("subprocess", "subprocess.run(['/bin/true'])"),
        attempt(
            "posix_spawn",
            "os.waitpid(os.posix_spawn('/bin/true', ['true'], {}), 0)",
        ),
    ]
    .concat();
    let output = run_unguarded(&program).await;
    assert_all_blocked(&output, &["fork", "subprocess", "posix_spawn"]);
}

/// No capability in any set (the bounding set too, when the host can empty it), no_new_privs,
/// a seccomp filter; asked of the kernel from inside, through ctypes (guards off).
#[tokio::test]
async fn kernel_alone_the_program_holds_no_capability() {
    let Some(_) = python().await else { return };
    let program = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
capget = {"x86_64": 125, "aarch64": 90}[os.uname().machine]
header = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
assert libc.syscall(capget, header, data) == 0
print("sets", sum(data))
print("bounding", sum(libc.prctl(23, cap, 0, 0, 0) == 1 for cap in range(64)))
print("ambient", sum(libc.prctl(47, 1, cap, 0, 0) == 1 for cap in range(64)))
print("nnp", libc.prctl(39, 0, 0, 0, 0))
print("seccomp", libc.prctl(21, 0, 0, 0, 0))
print("uid", os.getuid(), os.geteuid())
"#;
    // As the sandbox user, and as the host's own user (uid 0 when the tests run as root).
    for sandbox in [unguarded(), unguarded_same_user()] {
        let output = run_in(sandbox, program).await;
        assert!(output.contains("sets 0\n"), "{output}");
        assert!(output.contains("ambient 0\n"), "{output}");
        assert!(output.contains("nnp 1\n"), "{output}");
        assert!(output.contains("seccomp 2\n"), "{output}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(output.contains("bounding 0\n"), "{output}");
        }
    }
}

/// Issue 11, second escape: a callback walks the frames up (`f_back` and `f_locals` have no
/// audit event) to the runner's own state and rewrites it, then uses the real `open`. Here the
/// guards are off, so the walk certainly succeeds; the kernel must still refuse the root-only
/// file and the write outside the scratch directory.
#[tokio::test]
async fn kernel_stops_a_frame_walk_that_rewrote_the_guards() {
    let Some(_) = python().await else { return };
    let (_dir, secret) = owner_only_file();
    let outside = world_writable_dir();
    let secret = secret.display().to_string();
    let target = outside.path().join("owned.txt").display().to_string();
    let program = format!(
        r#"import sys, builtins
reached = []
def callback(x):
    frame = sys._getframe()
    while frame is not None:
        local = frame.f_locals
        if "frames_guarded" in local:
            local["frames_guarded"][0] = False
            reached.append(frame.f_code.co_name)
        frame = frame.f_back
    return x
sorted([2, 1], key=callback)
print("rewrote", reached)
real_open = builtins.open
try:
    print("read", real_open({secret:?}).read())
    print("escaped read")
except OSError as e:
    print("blocked read", e.errno)
try:
    real_open({target:?}, "w").write("owned")
    print("escaped write")
except OSError as e:
    print("blocked write", e.errno)
"#
    );
    for sandbox in [unguarded(), unguarded_same_user()] {
        let output = run_in(sandbox, &program).await;
        assert!(
            output.contains("rewrote ['_orchflow_sandbox_main'"),
            "{output}"
        );
        assert_all_blocked(&output, &["read", "write"]);
        assert!(!output.contains("TOP-SECRET"), "{output}");
        assert!(!Path::new(&target).exists());
    }
    // With the guards on, the same program does not get that far.
    let err = sandbox().run(&program).await.unwrap_err();
    assert_eq!(err.kind(), "refused", "{err:?}");
}

/// The sandbox works with a system-wide interpreter too (where one is installed next to the
/// default `python3`): it starts, and the kernel layers hold the same way.
#[tokio::test]
async fn a_system_wide_interpreter_runs_under_the_same_layers() {
    let Some(_) = python().await else { return };
    let system = Path::new("/usr/bin/python3");
    if !system.exists() {
        eprintln!("skipped: no /usr/bin/python3");
        return;
    }
    let sb = PythonSandbox::builder()
        .python(system)
        .limits(tight_limits())
        .python_guards_for_tests(false)
        .build();
    let status = sb.status().await.unwrap();
    eprintln!("system python status: {status:?}");
    let (_dir, secret) = owner_only_file();
    let program = [
        "import os\nprint('uid', os.getuid())\n".to_string(),
        attempt(
            "read",
            &format!("print(open({:?}).read())", secret.display()),
        ),
        attempt(
            "write",
            "open('/tmp/orchflow-system-probe', 'w').write('x')",
        ),
        attempt("fork", "os.fork() or os._exit(0)"),
    ]
    .concat();
    let output = run_in(&sb, &program).await;
    assert_all_blocked(&output, &["read", "write", "fork"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(status.user_switched, "{status:?}");
        assert!(output.contains("uid 65534"), "{output}");
    }
}
