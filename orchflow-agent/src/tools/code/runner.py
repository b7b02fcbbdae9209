# The Python side of orchflow-agent's `code` tool (embedded in the Rust crate with include_str!).
#
# Run as: python3 -I -B -X utf8 -c <this file> <config json>, with the program on stdin and a
# control pipe on the descriptor named in the config. Everything the Rust side needs to classify the outcome (syntax error,
# refusal, uncaught exception) goes to the control pipe as JSON lines; stdout and stderr are the program's.
#
# Order of work:
#   1. read the program, parse it with `ast` and check it against the allow-list (refuse before
#      running anything);
#   2. arm the run-time guards: an audit hook (PEP 578) that refuses process creation, writes
#      outside the scratch directory, reads outside the interpreter's own files, sockets, ctypes,
#      frame introspection and code-object construction; a restricted `__import__` (for the program
#      and for code that library functions evaluate from strings); builtins without
#      open/eval/exec/compile/input/globals/locals/vars and a getattr family that refuses dunder
#      and private names;
#   3. run the program in a fresh `__main__` namespace and report how it ended.
#
# The static check is the first gate, the guards the second; they share the interpreter with the
# program, so they are a first layer only. The boundary is the kernel's, set up by the Rust side
# before exec: Landlock (read-only interpreter, read-write scratch, nothing else), a read-only
# mount namespace, seccomp (no processes, sockets or device nodes), no capabilities and
# no_new_privs, a network namespace, rlimits.


def _orchflow_sandbox_main():
    import sys
    import os
    import json
    import ast
    import builtins
    import re
    import traceback
    import types

    # Nothing of the runner stays reachable through the module globals.
    _g = globals()
    for _k in list(_g):
        if _k != "__builtins__":
            del _g[_k]
    del _g, _k

    cfg = json.loads(sys.argv[1])
    sys.argv[:] = ["<code>"]
    CTL = int(cfg["ctl_fd"])
    MAX_MSG = 6000

    def clip(text, limit=MAX_MSG):
        text = str(text)
        if len(text) > limit:
            return "…" + text[-limit:]
        return text

    def send(obj):
        try:
            os.write(CTL, (json.dumps(obj) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    # Off only in the crate's tests (PythonSandboxBuilder::python_guards_for_tests), which show
    # what the kernel layers stop on their own; the program cannot reach this value.
    GUARDS = cfg.get("guards", True) is not False
    ALLOW = tuple(cfg.get("allow", ()))
    DENY = tuple(cfg.get("deny", ()))
    SCRATCH = os.path.realpath(cfg.get("scratch") or os.getcwd())

    raw = sys.stdin.buffer.read()

    # ---------------------------------------------------------------- static check
    SAFE_DUNDERS = frozenset(
        """__name__ __qualname__ __doc__ __main__ __debug__ __slots__ __init__ __repr__ __str__
        __len__ __iter__ __next__ __reversed__ __contains__ __getitem__ __setitem__ __delitem__
        __missing__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __bool__ __call__
        __enter__ __exit__ __format__ __index__ __int__ __float__ __complex__ __round__
        __floor__ __ceil__ __trunc__ __abs__ __neg__ __pos__ __invert__ __add__ __sub__ __mul__
        __matmul__ __truediv__ __floordiv__ __mod__ __divmod__ __pow__ __lshift__ __rshift__
        __and__ __or__ __xor__ __radd__ __rsub__ __rmul__ __rmatmul__ __rtruediv__
        __rfloordiv__ __rmod__ __rdivmod__ __rpow__ __rlshift__ __rrshift__ __rand__ __ror__
        __rxor__ __iadd__ __isub__ __imul__ __imatmul__ __itruediv__ __ifloordiv__ __imod__
        __ipow__ __ilshift__ __irshift__ __iand__ __ior__ __ixor__""".split()
    )
    # Names a program may not use at all (the builtins the sandbox removes, and the usual ways
    # back to them).
    BLOCKED_NAMES = frozenset(
        """__import__ eval exec compile open globals locals vars breakpoint input help exit quit
        copyright credits license __builtins__ __loader__ __spec__ __build_class__ __file__
        __cached__ __package__ __path__""".split()
    )
    # Module names that only an import (refused) could bind; a program using one without binding
    # it itself is reaching for something it was not given (e.g. through a star import).
    MODULE_NAMES = frozenset(
        """sys os posix nt subprocess builtins importlib ctypes socket shutil pathlib io signal gc
        inspect marshal pickle threading _thread multiprocessing pty mmap resource runpy
        tempfile glob fcntl select selectors asyncio urllib http ftplib webbrowser platform
        sysconfig site code codeop pdb pydoc operator copyreg weakref types""".split()
    )
    # Attribute names that lead from an allowed module or object to an unsafe one.
    BLOCKED_ATTRS = frozenset(
        """sys os posix subprocess builtins importlib ctypes socket shutil pathlib io signal gc
        inspect marshal pickle threading multiprocessing pty mmap resource runpy tempfile glob
        fcntl select selectors asyncio urllib http webbrowser platform sysconfig site pydoc
        operator copyreg weakref modules system popen spawnl spawnv execv execve fork forkpty
        fork_exec posix_spawn import_module reload find_spec module_from_spec exec_module
        load_module spec_from_file_location attrgetter methodcaller pythonapi cdll CDLL PyDLL ctypeslib
        dlopen memmove memset string_at addressof gi_frame gi_code gi_yieldfrom cr_frame cr_code
        cr_await ag_frame ag_code ag_await f_back f_globals f_locals f_builtins f_code f_trace
        tb_frame tb_next co_code func_globals func_code bltns enum timeit string typing
        contextlib warnings ast time linecache tokenize traceback dis codecs types testing
        f2py distutils external autowrap codegen runtests preview""".split()
    )

    def blocked_attr(name):
        if not isinstance(name, str):
            return False
        if name.startswith("_"):
            return name not in SAFE_DUNDERS
        return name in BLOCKED_ATTRS

    def under(name, prefixes):
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    def module_refusal(name):
        """Why importing `name` is refused, or None when it is allowed."""
        if not isinstance(name, str) or not name:
            return "an import with a computed or empty module name is not allowed"
        if under(name, DENY):
            return f"import of `{name}` is not allowed (denied module)"
        if not under(name, ALLOW):
            return f"import of `{name}` is not allowed (allowed modules: {', '.join(ALLOW)})"
        if any(part.startswith("_") for part in name.split(".")):
            return f"import of the private module `{name}` is not allowed"
        return None

    FIELD = re.compile(r"\{([^{}]*)\}")

    def format_refusal(text):
        # str.format / format_map can read attributes: "{0.__class__}".
        for field in FIELD.findall(text):
            head = re.split(r"[!:]", field, maxsplit=1)[0]
            for part in re.split(r"[.\[\]]", head)[1:]:
                if blocked_attr(part.strip()):
                    return f"a format string reads the attribute `{part.strip()}`"
        return None

    class Checker(ast.NodeVisitor):
        def __init__(self, assigned):
            self.problems = []
            self.assigned = assigned

        def refuse(self, node, why):
            line = getattr(node, "lineno", None)
            where = f"line {line}: " if line is not None else ""
            self.problems.append(where + why)

        def visit_Import(self, node):
            for alias in node.names:
                why = module_refusal(alias.name)
                if why:
                    self.refuse(node, why)
            self.generic_visit(node)

        def visit_ImportFrom(self, node):
            if node.level:
                self.refuse(node, "relative imports are not allowed")
            else:
                why = module_refusal(node.module)
                if why:
                    self.refuse(node, why)
                else:
                    for alias in node.names:
                        if alias.name == "*":
                            continue
                        if blocked_attr(alias.name) or alias.name in MODULE_NAMES:
                            self.refuse(
                                node,
                                f"`from {node.module} import {alias.name}` is not allowed",
                            )
                        elif under(f"{node.module}.{alias.name}", DENY):
                            self.refuse(
                                node,
                                f"import of `{node.module}.{alias.name}` is not allowed (denied module)",
                            )
            self.generic_visit(node)

        def visit_Name(self, node):
            name = node.id
            if name in BLOCKED_NAMES:
                self.refuse(node, f"use of `{name}` is not allowed")
            elif name.startswith("__") and name.endswith("__") and name not in SAFE_DUNDERS:
                self.refuse(node, f"use of the name `{name}` is not allowed")
            elif name in MODULE_NAMES and name not in self.assigned:
                self.refuse(node, f"use of `{name}` is not allowed (it is not an allowed module)")
            self.generic_visit(node)

        def visit_Attribute(self, node):
            if blocked_attr(node.attr):
                self.refuse(node, f"access to the attribute `{node.attr}` is not allowed")
            self.generic_visit(node)

        def visit_Call(self, node):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr", "hasattr"):
                if len(node.args) >= 2:
                    arg = node.args[1]
                    if isinstance(arg, ast.Constant) and blocked_attr(arg.value):
                        self.refuse(
                            node,
                            f"`{func.id}` with the attribute `{arg.value}` is not allowed",
                        )
            self.generic_visit(node)

        def visit_Constant(self, node):
            value = node.value
            if isinstance(value, str) and len(value) < 100_000:
                stripped = value.strip()
                if (
                    stripped.startswith("__")
                    and stripped.endswith("__")
                    and len(stripped) > 4
                    and stripped not in SAFE_DUNDERS
                ):
                    self.refuse(node, f"the string {stripped!r} names a forbidden attribute")
                elif stripped in BLOCKED_ATTRS and stripped not in MODULE_NAMES:
                    self.refuse(node, f"the string {stripped!r} names a forbidden attribute")
                elif "{" in value:
                    why = format_refusal(value)
                    if why:
                        self.refuse(node, why)

        def visit_MatchClass(self, node):
            for name in node.kwd_attrs:
                if blocked_attr(name):
                    self.refuse(node, f"a match pattern reads the attribute `{name}`")
            self.generic_visit(node)

        def visit_Global(self, node):
            for name in node.names:
                if name in BLOCKED_NAMES or (name.startswith("__") and name not in SAFE_DUNDERS):
                    self.refuse(node, f"`global {name}` is not allowed")
            self.generic_visit(node)

    def assigned_names(tree):
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
        return names

    try:
        src = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        send({"status": "syntax_error", "message": f"the program is not valid UTF-8 (byte {e.start})"})
        return 0

    try:
        tree = ast.parse(src, filename="<code>", mode="exec")
    except SyntaxError as e:
        parts = [f"{type(e).__name__}: {e.msg}"]
        if e.lineno is not None:
            parts[0] += f" (line {e.lineno}"
            parts[0] += f", column {e.offset})" if e.offset else ")"
        if e.text:
            line = e.text.rstrip("\n")
            parts.append("    " + line.strip())
            if e.offset:
                indent = len(line) - len(line.lstrip())
                parts.append("    " + " " * max(0, e.offset - 1 - indent) + "^")
        send({"status": "syntax_error", "message": clip("\n".join(parts))})
        return 0
    except (RecursionError, MemoryError, ValueError, OverflowError) as e:
        send({"status": "refused", "problems": [f"the program could not be parsed safely ({type(e).__name__})"]})
        return 0

    try:
        checker = Checker(assigned_names(tree))
        if GUARDS:
            checker.visit(tree)
    except RecursionError:
        send({"status": "refused", "problems": ["the program is nested too deeply to be checked"]})
        return 0
    if checker.problems:
        problems = checker.problems
        if len(problems) > 8:
            problems = problems[:8] + [f"… and {len(problems) - 8} more"]
        send({"status": "refused", "problems": [clip(p, 400) for p in problems]})
        return 0
    del checker

    try:
        code = compile(tree, "<code>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        send({"status": "syntax_error", "message": clip(f"{type(e).__name__}: {e}")})
        return 0
    del tree, src, raw

    # ---------------------------------------------------------------- run-time guards
    class SandboxViolation(PermissionError):
        """An action the sandbox refuses at run time."""

    class SandboxImportError(ImportError):
        """An import the sandbox refuses at run time."""

    class FrameDenied(ValueError):
        """Frame introspection refused: a ValueError, which is what library code that probes
        frames (collections.namedtuple, typing, enum) already handles."""

    class AttributeDenied(AttributeError):
        """Reading a frame or code attribute refused: an AttributeError, like a missing one."""

    VIOLATIONS = (SandboxViolation, SandboxImportError, FrameDenied, AttributeDenied)

    # Modules that library code imports at import time; loading them before the guards are armed
    # lets e.g. sympy import, and lets us disarm the one process-creating call that has no audit
    # event (`_posixsubprocess.fork_exec`).
    import subprocess
    import _posixsubprocess

    def _no_fork_exec(*args, **kwargs):
        raise SandboxViolation("creating processes is not allowed in the sandbox")

    if GUARDS:
        _posixsubprocess.fork_exec = _no_fork_exec
        subprocess._fork_exec = _no_fork_exec
    del subprocess, _posixsubprocess

    def real_dir(path):
        try:
            return os.path.realpath(path)
        except (OSError, ValueError):
            return None

    roots = set()
    for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path]:
        if isinstance(p, str) and os.path.isabs(p):
            r = real_dir(p)
            if r and r != "/":
                roots.add(r)
    READ_ROOTS = tuple(sorted(roots))
    del roots

    def inside(path, base):
        return path == base or path.startswith(base.rstrip("/") + "/")

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def check_open(path, mode, flags):
        if isinstance(path, bytes):
            try:
                path = os.fsdecode(path)
            except (UnicodeDecodeError, ValueError):
                return "opening a file with an undecodable name is not allowed"
        if not isinstance(path, str):
            return "opening files by descriptor is not allowed"
        full = real_dir(os.path.join(SCRATCH, path))
        if full is None:
            return "opening that file is not allowed"
        writing = False
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            writing = True
        if isinstance(flags, int) and flags & WRITE_FLAGS:
            writing = True
        if inside(full, SCRATCH):
            return None
        if writing:
            return f"writing `{path}` is not allowed (only the scratch directory is writable)"
        if full in ("/dev/null", "/dev/urandom", "/dev/random"):
            return None
        if any(inside(full, r) for r in READ_ROOTS):
            return None
        return f"reading `{path}` is not allowed"

    HARD_BLOCKED = frozenset(
        """os.system os.exec os.fork os.forkpty os.posix_spawn os.spawn os.kill os.killpg
        os.startfile os.chdir os.chmod os.chown os.link os.mkdir os.remove os.rename os.rmdir
        os.symlink os.truncate os.utime os.setxattr os.removexattr os.getxattr os.listxattr
        subprocess.Popen pty.spawn signal.pthread_kill sys.addaudithook sys.settrace
        sys.setprofile sys._getframe sys._current_frames sys._current_exceptions
        gc.get_objects gc.get_referrers gc.get_referents code.__new__ function.__new__
        pickle.find_class builtins.input builtins.breakpoint
        pdb.set_trace cpython.run_command cpython.run_file cpython.run_module cpython.run_stdin
        cpython.run_startup cpython.run_interactivehook cpython.PyInterpreterState_New
        webbrowser.open mmap.__new__ fcntl.ioctl resource.setrlimit resource.prlimit
        sqlite3.connect urllib.Request""".split()
    )
    BLOCKED_PREFIXES = (
        "socket.",
        "ctypes.",
        "http.",
        "ftplib.",
        "smtplib.",
        "imaplib.",
        "poplib.",
        "nntplib.",
        "telnetlib.",
        "shutil.",
        "sqlite3.",
        "winreg.",
        "msvcrt.",
    )
    FRAME_ATTRS = frozenset(
        "tb_frame gi_frame cr_frame ag_frame gi_code cr_code ag_code".split()
    )
    HARD_DENY_IMPORTS = (
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "subprocess",
        "_posixsubprocess",
        "multiprocessing",
        "_multiprocessing",
        "pty",
        "resource",
        "webbrowser",
        "pdb",
        "code",
        "codeop",
        "_xxsubinterpreters",
        "_testcapi",
        "_testinternalcapi",
        "faulthandler",
        "asyncio",
        "http",
        "urllib.request",
        "ftplib",
        "smtplib",
    )

    trusted_files = {}

    def trusted_frame(frame):
        try:
            filename = frame.f_code.co_filename
        except AttributeError:
            return False
        if not isinstance(filename, str):
            return False
        known = trusted_files.get(filename)
        if known is None:
            if filename.startswith("<frozen "):
                known = True
            elif os.path.isabs(filename):
                full = real_dir(filename)
                known = full is not None and any(inside(full, r) for r in READ_ROOTS)
            else:
                known = False
            if len(trusted_files) < 10_000:
                trusted_files[filename] = known
        return known

    def make_hook(frames_guarded):
        # `frames_guarded` is a one-element list: the frame rules can be relaxed after the
        # program has finished (to format its traceback); every other rule is unconditional.
        def hook(event, args):
            if event == "open":
                path = args[0] if len(args) > 0 else None
                mode = args[1] if len(args) > 1 else None
                flags = args[2] if len(args) > 2 else 0
                why = check_open(path, mode, flags)
                if why:
                    raise SandboxViolation(why)
                return
            if event == "import":
                name = args[0] if args else None
                if isinstance(name, str) and under(name, HARD_DENY_IMPORTS):
                    raise SandboxImportError(f"import of `{name}` is not allowed in the sandbox")
                return
            if event in ("os.listdir", "os.scandir", "os.fwalk", "os.walk"):
                path = args[0] if args else "."
                if path is None:
                    path = "."
                if isinstance(path, bytes):
                    path = os.fsdecode(path)
                if not isinstance(path, str):
                    raise SandboxViolation("listing directories by descriptor is not allowed")
                full = real_dir(os.path.join(SCRATCH, path)) or "/"
                if not (inside(full, SCRATCH) or any(inside(full, r) for r in READ_ROOTS)):
                    raise SandboxViolation(f"listing `{path}` is not allowed")
                return
            if event == "object.__getattr__":
                if frames_guarded[0] and len(args) > 1 and args[1] in FRAME_ATTRS:
                    raise AttributeDenied(f"access to the attribute `{args[1]}` is not allowed")
                return
            if event == "sys._getframe":
                # Library code (sympy's dispatcher and lambdify, typing, namedtuple) looks at
                # its own callers; the program and code evaluated from strings may not.
                if frames_guarded[0] and not (args and trusted_frame(args[0])):
                    raise FrameDenied("`sys._getframe` is not allowed in the sandbox")
                return
            if event in ("sys._current_frames", "sys._current_exceptions"):
                raise FrameDenied(f"`{event}` is not allowed in the sandbox")
            if event == "ctypes.dlopen" and args and args[0] is None:
                # ctypes' own import opens the running executable; nothing else.
                return
            if event in HARD_BLOCKED or event.startswith(BLOCKED_PREFIXES):
                raise SandboxViolation(f"`{event}` is not allowed in the sandbox")

        return hook

    frames_guarded = [True]
    if GUARDS:
        sys.addaudithook(make_hook(frames_guarded))
    del make_hook

    real_import = builtins.__import__
    real_getattr = builtins.getattr
    real_setattr = builtins.setattr
    real_delattr = builtins.delattr
    real_hasattr = builtins.hasattr

    def user_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            raise SandboxImportError("relative imports are not allowed")
        # PyImport_Import (C code importing a module) passes fromlist ['__doc__'].
        if isinstance(fromlist, list) and fromlist == ["__doc__"]:
            return real_import(name, globals, locals, fromlist, level)
        why = module_refusal(name)
        if why:
            raise SandboxImportError(why)
        for item in fromlist or ():
            if item == "*":
                continue
            if not isinstance(item, str) or blocked_attr(item) or item in MODULE_NAMES:
                raise SandboxImportError(f"`from {name} import {item}` is not allowed")
            if under(f"{name}.{item}", DENY):
                raise SandboxImportError(f"import of `{name}.{item}` is not allowed (denied module)")
        return real_import(name, globals, locals, fromlist, level)

    def is_library_namespace(g):
        if not isinstance(g, dict):
            return False
        name = g.get("__name__")
        if not isinstance(name, str) or name == "__main__":
            return False
        mod = sys.modules.get(name)
        return mod is not None and real_getattr(mod, "__dict__", None) is g

    def library_import(name, globals=None, locals=None, fromlist=(), level=0):
        # Library modules import what they like; code a library evaluates from a string (sympify,
        # lambdify) gets the program's rules.
        if is_library_namespace(globals):
            return real_import(name, globals, locals, fromlist, level)
        return user_import(name, globals, locals, fromlist, level)

    def safe_getattr(obj, name, *default):
        if blocked_attr(name):
            raise SandboxViolation(f"access to the attribute `{name}` is not allowed")
        return real_getattr(obj, name, *default)

    def safe_hasattr(obj, name):
        if blocked_attr(name):
            raise SandboxViolation(f"access to the attribute `{name}` is not allowed")
        return real_hasattr(obj, name)

    def safe_setattr(obj, name, value):
        if blocked_attr(name):
            raise SandboxViolation(f"setting the attribute `{name}` is not allowed")
        return real_setattr(obj, name, value)

    def safe_delattr(obj, name):
        if blocked_attr(name):
            raise SandboxViolation(f"deleting the attribute `{name}` is not allowed")
        return real_delattr(obj, name)

    for fn, nm in (
        (safe_getattr, "getattr"),
        (safe_hasattr, "hasattr"),
        (safe_setattr, "setattr"),
        (safe_delattr, "delattr"),
        (user_import, "__import__"),
    ):
        fn.__name__ = nm
        fn.__qualname__ = nm

    safe_builtins = {
        k: v
        for k, v in vars(builtins).items()
        if k not in BLOCKED_NAMES or k == "__build_class__"
    }
    safe_builtins.update(
        __import__=user_import,
        getattr=safe_getattr,
        hasattr=safe_hasattr,
        setattr=safe_setattr,
        delattr=safe_delattr,
    )
    if GUARDS:
        builtins.__import__ = library_import

    main = types.ModuleType("__main__")
    namespace = main.__dict__
    namespace["__builtins__"] = safe_builtins if GUARDS else builtins
    sys.modules["__main__"] = main
    del main

    def tail_of_traceback(exc):
        frames_guarded[0] = False
        try:
            entries = traceback.extract_tb(exc.__traceback__)
            while entries and entries[0].filename != "<code>":
                entries.pop(0)
            lines = ["Traceback (most recent call last):\n"]
            lines += traceback.format_list(entries[-12:])
            lines += traceback.format_exception_only(type(exc), exc)
            text = "".join(lines)
        except BaseException as e:  # noqa: BLE001 - a hostile __str__ must not hide the error
            text = f"{type(exc).__name__} (its message could not be formatted: {type(e).__name__})"
        return clip(text)

    def line_of(exc):
        tb = exc.__traceback__
        line = None
        frames_guarded[0] = False
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<code>":
                line = tb.tb_lineno
            tb = tb.tb_next
        return line

    # ---------------------------------------------------------------- run
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError, OSError):
        pass
    send({"status": "running"})
    status = 0
    try:
        exec(code, namespace)
    except SystemExit as e:
        c = e.code
        if c is None or c == 0:
            send({"status": "ok"})
        else:
            status = c if isinstance(c, int) and 0 < c < 256 else 1
            send({"status": "exit", "code": status, "message": clip(c, 400)})
    except VIOLATIONS as e:
        msg = str(e.args[0]) if e.args else type(e).__name__
        line = line_of(e)
        send({"status": "violation", "message": (f"line {line}: " if line else "") + clip(msg, 600)})
        status = 1
    except BaseException as e:  # noqa: BLE001 - every exception of the program is reported
        is_memory = isinstance(e, MemoryError)
        name = type(e).__name__
        if is_memory:
            # Free what the program held before formatting anything.
            namespace.clear()
        send({"status": "exception", "type": name, "traceback": tail_of_traceback(e)})
        status = 1
    else:
        send({"status": "ok"})
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(status)


_orchflow_sandbox_main()
