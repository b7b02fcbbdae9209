#!/usr/bin/env python3
"""Generates the two crates `bench/compile/measure` compares, into a scratch workspace.

    bench/compile/gen.py DIR [ORCHFLOW_PATH]     # write the workspace to DIR (for reading)

The workspace (templates in `bench/compile/template/`) has three members:
  with_orchflow  20 flows written with `flow!` over 40 `#[step]` fns;
  hand_written   the same 20 workflows as plain async Rust over tokio (`tokio::join!` for the
                 groups, `if`, `for` with `break`, an inline retry loop where orchflow retries);
  compare        a bin (and a `#[test]`) running both `run_all()`s and comparing the sums.

Both libraries have the same layout: `pub mod steps { … }` (the 40 steps and the 7
predicates, with identical bodies), `pub mod flows { … }` (`pub async fn flow_N(x: u64) -> u64`,
a failed run counting 0) and `pub async fn run_all() -> u64`, so `measure` can count lines per
module in the source and in the expansion.

Every flow has 7 step calls in one of three shapes, each with a sequence, a 2-branch parallel
group, an `if`/`else` and a bounded loop with `until`:
  0: h => [b1, b2] => j => if p { a1 } else { a2 } => loop(max = M) { l } until u
  1: h => loop(max = M) { l } until u => [b1, b2] => j => if p { a1 } else { a2 }
  2: [b1, b2] => j => if p { a1 => h } else { a2 } => loop(max = M) { l } until u
The heads s0..s4 are fallible (`#[step(retry = 2)]`, every third call fails once, so retries
really happen); s5..s9 are infallible.
"""

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template"
N_FLOWS = 20

IF_PREDS = [
    ("is_even", "*x % 2 == 0"),
    ("below_100", "*x < 100"),
    ("mult_3", "*x % 3 == 0"),
    ("below_50", "*x < 50"),
]
UNTIL_PREDS = [
    ("over_200", "*x > 200"),
    ("over_500", "*x > 500"),
    ("is_odd", "*x % 2 == 1"),
]


def step_defs(orchflow: bool) -> str:
    """The 40 steps and the predicates; `orchflow` adds the attributes."""
    attr = (lambda a: f"    {a}\n") if orchflow else (lambda a: "")
    out = []
    out.append("    use std::sync::atomic::{AtomicU64, Ordering};\n")
    # Heads: s0..s4 fallible with retry, s5..s9 infallible.
    for k in range(10):
        if k < 5:
            out.append(
                f"    static S{k}_CALLS: AtomicU64 = AtomicU64::new(0);\n\n"
                + attr("#[step(retry = 2)]")
                + f"    pub async fn s{k}(x: u64) -> Result<u64, std::io::Error> {{\n"
                f"        if S{k}_CALLS.fetch_add(1, Ordering::Relaxed) % 3 == 2 {{\n"
                f'            return Err(std::io::Error::other("transient"));\n'
                f"        }}\n"
                f"        Ok(x + {k + 1})\n"
                f"    }}\n"
            )
        else:
            out.append(attr("#[step]") + f"    pub async fn s{k}(x: u64) -> u64 {{\n        x + {k + 1}\n    }}\n")
    # Branches: by reference.
    for k in range(10):
        out.append(attr("#[step]") + f"    pub async fn b{k}(x: &u64) -> u64 {{\n        x * {k % 3 + 1} + {k}\n    }}\n")
    # Joins of a 2-branch group.
    for k in range(5):
        body = f"(p.0 + p.1) / {k % 2 + 1} + {k}" if k % 2 == 0 else f"p.0.max(p.1) + {k}"
        out.append(attr("#[step]") + f"    pub async fn j{k}(p: (u64, u64)) -> u64 {{\n        {body}\n    }}\n")
    # Arms of the ifs.
    for k in range(10):
        body = f"x / 2 + {k}" if k % 2 == 0 else f"x + {3 * k}"
        out.append(attr("#[step]") + f"    pub async fn a{k}(x: u64) -> u64 {{\n        {body}\n    }}\n")
    # Loop bodies.
    for k in range(5):
        out.append(attr("#[step]") + f"    pub async fn l{k}(x: u64) -> u64 {{\n        x * 2 + {k}\n    }}\n")
    for name, body in IF_PREDS + UNTIL_PREDS:
        out.append(f"    pub fn {name}(x: &u64) -> bool {{\n        {body}\n    }}\n")
    return "\n".join(out)


def flow_parts(i: int) -> dict:
    return {
        "h": f"s{i % 10}",
        "fallible": i % 10 < 5,
        "b1": f"b{i % 10}",
        "b2": f"b{(3 * i + 1) % 10}",
        "j": f"j{i % 5}",
        "p": IF_PREDS[i % 4][0],
        "a1": f"a{i % 10}",
        "a2": f"a{(i + 7) % 10}",
        "l": f"l{i % 5}",
        "u": UNTIL_PREDS[i % 3][0],
        "m": 2 + i % 3,
        "shape": i % 3,
    }


def orchflow_flow(i: int) -> str:
    f = flow_parts(i)
    group = f"[{f['b1']}, {f['b2']}] => {f['j']}"
    loop = f"loop(max = {f['m']}) {{ {f['l']} }} until {f['u']}"
    if f["shape"] == 0:
        body = f"{f['h']} => {group} => if {f['p']} {{ {f['a1']} }} else {{ {f['a2']} }} => {loop}"
    elif f["shape"] == 1:
        body = f"{f['h']} => {loop} => {group} => if {f['p']} {{ {f['a1']} }} else {{ {f['a2']} }}"
    else:
        body = f"{group} => if {f['p']} {{ {f['a1']} => {f['h']} }} else {{ {f['a2']} }} => {loop}"
    return (
        f"    pub async fn flow_{i}(x: u64) -> u64 {{\n"
        f"        let f = flow! {{\n"
        f"            #[flow(name = \"flow_{i}\")]\n"
        f"            {body}\n"
        f"        }};\n"
        f"        f.run(x).await.output.unwrap_or(0)\n"
        f"    }}\n"
    )


def hand_flow(i: int) -> str:
    f = flow_parts(i)
    ind = " " * 12

    def head(arg):
        if not f["fallible"]:
            return f"{ind}let v = {f['h']}({arg}).await;\n"
        return (
            f"{ind}let v = {{\n"
            f"{ind}    let mut attempt = 0;\n"
            f"{ind}    loop {{\n"
            f"{ind}        match {f['h']}({arg}).await {{\n"
            f"{ind}            Ok(v) => break v,\n"
            f"{ind}            Err(e) if attempt == 2 => return Err(e),\n"
            f"{ind}            Err(_) => attempt += 1,\n"
            f"{ind}        }}\n"
            f"{ind}    }}\n"
            f"{ind}}};\n"
        )

    def group(arg):
        return (
            f"{ind}let (p0, p1) = tokio::join!({f['b1']}(&{arg}), {f['b2']}(&{arg}));\n"
            f"{ind}let v = {f['j']}((p0, p1)).await;\n"
        )

    def cond(a1_then_h=False):
        if a1_then_h:
            fallible_h = head("v").replace("\n" + ind, "\n" + ind + "    ").replace(ind + "let v", ind + "    let v", 1)
            return (
                f"{ind}let v = if {f['p']}(&v) {{\n"
                f"{ind}    let v = {f['a1']}(v).await;\n"
                f"{fallible_h}"
                f"{ind}    v\n"
                f"{ind}}} else {{\n"
                f"{ind}    {f['a2']}(v).await\n"
                f"{ind}}};\n"
            )
        return f"{ind}let v = if {f['p']}(&v) {{ {f['a1']}(v).await }} else {{ {f['a2']}(v).await }};\n"

    def loop():
        return (
            f"{ind}let mut v = v;\n"
            f"{ind}for _ in 0..{f['m']} {{\n"
            f"{ind}    v = {f['l']}(v).await;\n"
            f"{ind}    if {f['u']}(&v) {{\n"
            f"{ind}        break;\n"
            f"{ind}    }}\n"
            f"{ind}}}\n"
        )

    if f["shape"] == 0:
        body = head("x") + group("v") + cond() + loop()
    elif f["shape"] == 1:
        body = head("x") + loop() + group("v") + cond()
    else:
        body = group("x") + cond(a1_then_h=True) + loop()
    return (
        f"    pub async fn flow_{i}(x: u64) -> u64 {{\n"
        f"        let r: Result<u64, std::io::Error> = async {{\n"
        f"{body}"
        f"{ind}Ok(v)\n"
        f"        }}\n"
        f"        .await;\n"
        f"        r.unwrap_or(0)\n"
        f"    }}\n"
    )


def run_all() -> str:
    calls = "".join(f"    sum += flows::flow_{i}({i + 1}).await;\n" for i in range(N_FLOWS))
    return f"pub async fn run_all() -> u64 {{\n    let mut sum = 0;\n{calls}    sum\n}}\n"


def with_orchflow_lib() -> str:
    return (
        "//! Generated by bench/compile/gen.py: 20 flows over 40 steps, with orchflow.\n\n"
        "pub mod steps {\n    use orchflow::step;\n\n"
        + step_defs(True)
        + "}\n\npub mod flows {\n    use super::steps::*;\n    use orchflow::flow;\n\n"
        + "\n".join(orchflow_flow(i) for i in range(N_FLOWS))
        + "}\n\n"
        + run_all()
    )


def hand_written_lib() -> str:
    return (
        "//! Generated by bench/compile/gen.py: the same 20 workflows, hand-written over tokio.\n\n"
        "pub mod steps {\n"
        + step_defs(False)
        + "}\n\npub mod flows {\n    use super::steps::*;\n\n"
        + "\n".join(hand_flow(i) for i in range(N_FLOWS))
        + "}\n\n"
        + run_all()
    )


def generate(dest: Path, orchflow_path: Path) -> None:
    """Writes the workspace to `dest` (which may exist)."""
    for src in TEMPLATE.rglob("*"):
        if src.is_file():
            rel = src.relative_to(TEMPLATE)
            out = dest / rel.parent / rel.name.removesuffix(".in")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(src.read_text().replace("@ORCHFLOW_PATH@", str(orchflow_path)))
    for name, text in (("with_orchflow", with_orchflow_lib()), ("hand_written", hand_written_lib())):
        (dest / name / "src").mkdir(parents=True, exist_ok=True)
        (dest / name / "src" / "lib.rs").write_text(text)
        # Both in rustfmt's style, so line counts compare like with like (rustfmt leaves the
        # inside of `flow! { … }` alone). Without rustfmt the generator's own layout stays.
        if shutil.which("rustfmt"):
            subprocess.run(["rustfmt", "--edition", "2024", str(dest / name / "src" / "lib.rs")], check=False)
    lock = orchflow_path / "Cargo.lock"
    if lock.exists():  # the repository's versions, so the scratch build resolves offline
        shutil.copy(lock, dest / "Cargo.lock")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    generate(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parent.parent)
    print(sys.argv[1])
