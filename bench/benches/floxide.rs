//! floxide 3.x versions of orchflow's benchmark workloads, for cross-system comparison. Rows use
//! the same criterion group names as orchflow's benches and the function name `floxide`.
//!
//! `durable100` is skipped: floxide 3.2.2 has no checkpoint store that writes to disk. Its only
//! `CheckpointStore` implementation is `InMemoryCheckpointStore` (a `HashMap` behind an
//! `RwLock`, which does not count as durable), and the optional `floxide-redis` backend talks to
//! a Redis server rather than writing files, so there is nothing comparable to a durable
//! on-disk store to measure.
//!
//! How the workloads are built:
//! - `seq100`: `workflow!` needs every node as a named field and every edge written out, and it
//!   has no "repeat this node N times" form, so the `chain_workflow!` macro_rules below writes
//!   the `workflow!` invocation (100 `AddOne` fields `n0`..`n99` and the edges
//!   `n0 => { [n1] }; ...; n98 => { [n99] }; n99 => {};`) from one list of identifiers. What
//!   `workflow!` receives is exactly a hand-written 100-node chain.
//! - `fanout100`: floxide's fan-out/fan-in as in its `split_example` and `merge_example`: a
//!   `SplitNode` returns `Transition::NextAll` with 100 copies of its input, each becomes a work
//!   item of the `branch` node (`AddOne`), and the `join` node adds each branch's result to a
//!   `SharedState` in the context, returning `Transition::Hold` until all 100 have arrived and
//!   then the sum. floxide's in-process `Workflow::run` drains a single `VecDeque` of work items
//!   on the calling task, so the 100 branches run one after another, not concurrently
//!   (concurrency only exists in floxide's distributed worker mode).
//!
//! Each iteration creates a fresh `WorkflowCtx` (for the fan-out, with a fresh join
//! accumulator) and awaits `Workflow::run` once: one complete workflow run. No tracing
//! subscriber is installed, so floxide's `tracing` spans and events are disabled, as by default.

use std::hint::black_box;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use floxide::{
    FloxideError, Node, SharedState, SplitNode, Transition, Workflow, WorkflowCtx, workflow,
};
use serde::{Deserialize, Serialize};

/// Number of chain nodes / fan-out branches.
const N: u64 = 100;

/// The trivial node: takes a u64 and returns it + 1.
#[derive(Clone, Debug)]
pub struct AddOne;

#[async_trait]
impl<C: floxide::context::Context> Node<C> for AddOne {
    type Input = u64;
    type Output = u64;

    async fn process(&self, _ctx: &C, input: u64) -> Result<Transition<u64>, FloxideError> {
        Ok(Transition::Next(input + 1))
    }
}

// ---------------------------------------------------------------------------------------------
// seq100: 100 sequential AddOne nodes
// ---------------------------------------------------------------------------------------------

/// Writes a `workflow!` whose fields are the given identifiers (all `AddOne`), chained in order:
/// the first is the start node, the last is the terminal node. A tt-muncher accumulates the
/// edges, because `workflow!` is a proc macro and does not expand macros inside its input.
/// Also writes a `new()` constructor, since a struct literal would need all 100 fields.
macro_rules! chain_workflow {
    ($name:ident; $($node:ident)+) => {
        chain_workflow!(@edges $name; [$($node)+]; []; $($node)+);
    };
    (@edges $name:ident; [$($all:ident)+]; [$($edges:tt)*];
        $a:ident $b:ident $($rest:ident)*) => {
        chain_workflow!(@edges $name; [$($all)+]; [$($edges)* $a => { [$b] };]; $b $($rest)*);
    };
    (@edges $name:ident; [$($all:ident)+]; [$($edges:tt)*]; $last:ident) => {
        chain_workflow!(@emit $name; [$($all)+]; [$($edges)* $last => {};]);
    };
    (@emit $name:ident; [$first:ident $($others:ident)*]; [$($edges:tt)*]) => {
        workflow! {
            pub struct $name {
                $first: AddOne,
                $($others: AddOne,)*
            }
            start = $first;
            context = ();
            edges {
                $($edges)*
            }
        }

        impl $name {
            fn new() -> Self {
                Self { $first: AddOne, $($others: AddOne,)* }
            }
        }
    };
}

chain_workflow!(Seq100;
    n0 n1 n2 n3 n4 n5 n6 n7 n8 n9
    n10 n11 n12 n13 n14 n15 n16 n17 n18 n19
    n20 n21 n22 n23 n24 n25 n26 n27 n28 n29
    n30 n31 n32 n33 n34 n35 n36 n37 n38 n39
    n40 n41 n42 n43 n44 n45 n46 n47 n48 n49
    n50 n51 n52 n53 n54 n55 n56 n57 n58 n59
    n60 n61 n62 n63 n64 n65 n66 n67 n68 n69
    n70 n71 n72 n73 n74 n75 n76 n77 n78 n79
    n80 n81 n82 n83 n84 n85 n86 n87 n88 n89
    n90 n91 n92 n93 n94 n95 n96 n97 n98 n99
);

// ---------------------------------------------------------------------------------------------
// fanout100: split into 100 branches, each AddOne, joined by a Hold-until-complete node
// ---------------------------------------------------------------------------------------------

/// Context of the fan-out run: the join's accumulator (branches seen, sum of their outputs) and
/// the number of branches to wait for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FanCtx {
    acc: SharedState<(u64, u64)>,
    expected: u64,
}

/// Join node: holds until every branch has delivered, then emits the sum of their outputs.
#[derive(Clone, Debug)]
pub struct Join;

#[async_trait]
impl Node<FanCtx> for Join {
    type Input = u64;
    type Output = u64;

    async fn process(&self, ctx: &FanCtx, input: u64) -> Result<Transition<u64>, FloxideError> {
        let mut acc = ctx.acc.get().await;
        acc.0 += 1;
        acc.1 += input;
        if acc.0 < ctx.expected {
            Ok(Transition::Hold)
        } else {
            Ok(Transition::Next(acc.1))
        }
    }
}

/// Split function: 100 copies of the input, one per branch.
fn split100(x: u64) -> Vec<u64> {
    vec![x; N as usize]
}

workflow! {
    pub struct Fanout100 {
        split: SplitNode<u64, u64, fn(u64) -> Vec<u64>>,
        branch: AddOne,
        join: Join,
    }
    start = split;
    context = FanCtx;
    edges {
        split => { [branch] };
        branch => { [join] };
        join => {};
    }
}

fn fanout100_workflow() -> Fanout100 {
    Fanout100 {
        split: SplitNode::new(split100 as fn(u64) -> Vec<u64>),
        branch: AddOne,
        join: Join,
    }
}

fn fan_ctx() -> WorkflowCtx<FanCtx> {
    WorkflowCtx::new(FanCtx {
        acc: SharedState::new((0, 0)),
        expected: N,
    })
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn seq100(c: &mut Criterion) {
    let rt = runtime();
    let wf = Seq100::new();

    // Check the result once before measuring: 0 through 100 AddOne nodes is 100.
    let out = rt
        .block_on(wf.run(&WorkflowCtx::new(()), 0))
        .expect("seq100 run");
    assert_eq!(out, N);

    let mut group = c.benchmark_group("seq100");
    group.throughput(Throughput::Elements(N));
    group.bench_function("floxide", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = WorkflowCtx::new(());
            let out = wf.run(&ctx, black_box(0)).await.expect("seq100 run");
            black_box(out)
        })
    });
    group.finish();
}

fn fanout100(c: &mut Criterion) {
    let rt = runtime();
    let wf = fanout100_workflow();

    // Check the result once before measuring: 100 branches each turn 0 into 1, summed to 100.
    let out = rt.block_on(wf.run(&fan_ctx(), 0)).expect("fanout100 run");
    assert_eq!(out, N);

    let mut group = c.benchmark_group("fanout100");
    group.throughput(Throughput::Elements(N));
    group.bench_function("floxide", |b| {
        b.to_async(&rt).iter(|| async {
            let ctx = fan_ctx();
            let out = wf.run(&ctx, black_box(0)).await.expect("fanout100 run");
            black_box(out)
        })
    });
    group.finish();
}

criterion_group!(benches, seq100, fanout100);
criterion_main!(benches);
