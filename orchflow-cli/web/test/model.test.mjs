// The reducer and what the graph shows: node states at chosen moments, loop iterations, the
// arm taken, map items, nested flows, sessions, live (incremental) = recorded (batch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { buildModel, Recording, initialState, applyEvent, stateAt, deriveNodes } from '../src/model.js';
import { buildLanes, buildAxis } from '../src/lanes.js';
import { compileFilter, filterEvents } from '../src/eventlog.js';
import { parseTime } from '../src/time.js';
import { checkBundle } from '../src/bundle.js';
import { everythingRun, bigRun, RunBuilder, everythingGraph } from './gen.mjs';

const load = (name) => JSON.parse(fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

function record(bundle) {
  const model = buildModel(bundle.graph);
  const rec = new Recording(model);
  rec.setDocument(bundle.document);
  for (const e of bundle.journal) rec.addEntry(e);
  return { model, rec };
}

/** The state just after the first event matching `pred` (k = its index + 1). */
function after(rec, pred) {
  const i = rec.events.findIndex(pred);
  assert.ok(i >= 0, 'no such event');
  return stateAt(rec, i + 1);
}

const endOf = (rec, step, n = 1) => {
  let seen = 0;
  return (e) => e.kind === 'end' && rec.traces[e.trace].step === step && ++seen === n;
};
const startOf = (rec, step, n = 1) => {
  let seen = 0;
  return (e) => e.kind === 'start' && rec.traces[e.trace].step === step && ++seen === n;
};

test('times: RFC 3339 with nanoseconds, offsets, the legacy shape; garbage is NaN', () => {
  assert.equal(parseTime('2023-11-14T22:13:20.123456789Z'), 1_700_000_000_123.456789);
  assert.equal(parseTime('2023-11-14T23:13:20+01:00'), 1_700_000_000_000);
  assert.equal(parseTime({ secs_since_epoch: 1_700_000_000, nanos_since_epoch: 5_000_000 }), 1_700_000_000_005);
  assert.ok(Number.isNaN(parseTime('yesterday')));
  assert.ok(Number.isNaN(parseTime(null)));
});

test('a recorded run (written by the library): every node at the end', () => {
  const { model, rec } = record(load('showcase-completed.bundle.json'));
  assert.equal(rec.traces.length, 26);
  const s = stateAt(rec, rec.events.length);
  assert.equal(s.runStatus, 'completed');
  assert.equal(s.sessions, 2);
  const d = deriveNodes(model, s);
  const st = (k) => d.get(k).state;
  assert.equal(st('0'), 'succeeded');
  assert.equal(st('1/0/0'), 'retried');
  assert.equal(d.get('1/0/0').attempts, 3);
  assert.equal(st('1/1/0'), 'succeeded');
  assert.equal(st('1'), 'retried');
  assert.equal(d.get('3/then').taken, true);
  assert.equal(d.get('3/else').taken, false);
  assert.equal(st('3/else/0'), 'pending');
  assert.equal(d.get('4').iterations, 3);
  assert.equal(d.get('6').items, 5);
  assert.equal(d.get('6').itemsDone, 5);
  assert.equal(st('8'), 'succeeded');
  assert.equal(st('8>0'), 'succeeded');
  assert.equal(st('8>1'), 'succeeded');
  assert.equal(st('9'), 'succeeded');
  assert.equal(d.get('9').attempts, 2);
  assert.equal(st('10'), 'succeeded');
  for (const n of model.nodes) assert.ok(d.has(n.key), n.key);
});

test('the events are in time order, each attempt starts before it ends', () => {
  for (const b of [load('showcase-completed.bundle.json'), everythingRun(), bigRun(2000)]) {
    const { rec } = record(b);
    for (let i = 1; i < rec.events.length; i++) assert.ok(rec.events[i].t >= rec.events[i - 1].t, `event ${i}`);
    for (const tr of rec.traces) assert.ok(tr.startIdx >= 0 && tr.startIdx < tr.endIdx, `${tr.step} ${tr.startIdx} ${tr.endIdx}`);
    assert.equal(rec.events.filter((e) => e.kind === 'start').length, rec.traces.length);
    assert.equal(rec.events.filter((e) => e.kind === 'entry' || e.kind === 'answer').length, b.journal.length);
  }
});

test('a recorded run at chosen moments: retry, group, if, loop, map, suspension', () => {
  const { model, rec } = record(load('showcase-completed.bundle.json'));
  // Before anything: everything pending.
  let d = deriveNodes(model, stateAt(rec, 0));
  assert.ok([...d.values()].every((v) => v.state === 'pending' || v.decided === false));
  // The first fetch failed; market still runs; the group runs.
  let s = after(rec, endOf(rec, 'fetch', 1));
  d = deriveNodes(model, s);
  assert.equal(d.get('1/0/0').state, 'failed');
  assert.equal(d.get('1/1/0').state, 'running');
  assert.equal(d.get('1').state, 'running');
  assert.equal(d.get('0').state, 'succeeded');
  assert.equal(d.get('3/then').taken, undefined);
  // The third fetch attempt runs (second retry).
  s = after(rec, startOf(rec, 'fetch', 3));
  d = deriveNodes(model, s);
  assert.equal(d.get('1/0/0').state, 'running');
  assert.equal(d.get('1/1/0').state, 'succeeded');
  // Publish running: the then arm is taken, else not.
  s = after(rec, startOf(rec, 'publish'));
  d = deriveNodes(model, s);
  assert.equal(d.get('3/then').taken, true);
  assert.equal(d.get('3/else').taken, false);
  assert.equal(d.get('1/0/0').state, 'retried');
  // The loop: the second iteration has started.
  s = after(rec, startOf(rec, 'refine', 2));
  d = deriveNodes(model, s);
  assert.equal(d.get('4').iterations, 2);
  assert.equal(d.get('4').state, 'running');
  // Between iterations (every step of the body done so far): the loop still runs; it is done
  // once the step after it starts.
  s = after(rec, endOf(rec, 'score', 2));
  d = deriveNodes(model, s);
  assert.equal(d.get('4/body/1').state, 'succeeded');
  assert.equal(d.get('4').state, 'running');
  s = after(rec, startOf(rec, 'split'));
  assert.equal(deriveNodes(model, s).get('4').state, 'succeeded');
  // The map: three items started, two done.
  s = after(rec, startOf(rec, 'work', 3));
  d = deriveNodes(model, s);
  assert.equal(d.get('6').items, 3);
  assert.equal(d.get('6').itemsDone, 2);
  assert.equal(d.get('6').state, 'running');
  // The nested flow: its first step running inside the audit step.
  s = after(rec, startOf(rec, 'check'));
  d = deriveNodes(model, s);
  assert.equal(d.get('8>0').state, 'running');
  assert.equal(d.get('8>1').state, 'pending');
  assert.equal(d.get('8').state, 'running');
  // The question: the run suspends; after the answer, session 2 reruns the step.
  s = after(rec, (e) => e.kind === 'entry' && e.record === 'stopped');
  d = deriveNodes(model, s);
  assert.equal(s.runStatus, 'suspended');
  assert.equal(d.get('9').state, 'suspended');
  assert.equal(d.get('10').state, 'pending');
  s = after(rec, (e) => e.kind === 'answer');
  assert.equal(s.runStatus, 'queued');
  assert.equal(s.answers, 1);
  s = after(rec, startOf(rec, 'review', 2));
  assert.equal(s.sessions, 2);
  assert.equal(deriveNodes(model, s).get('9').state, 'running');
});

test('a suspended run (written by the library) waits on its question', () => {
  const { model, rec } = record(load('showcase-suspended.bundle.json'));
  const s = stateAt(rec, rec.events.length);
  assert.equal(s.runStatus, 'suspended');
  const d = deriveNodes(model, s);
  assert.equal(d.get('9').state, 'suspended');
  assert.equal(d.get('10').state, 'pending');
  assert.equal(rec.doc.pending[0].question, 'review');
});

test('the same nested flow run by two steps: attempts go to the step that contains them', () => {
  const { model, rec } = record(everythingRun());
  const nested = rec.traces.filter((t) => t.parent === 'audit');
  assert.deepEqual(nested.map((t) => t.key), ['7>0', '7>1', '8>0', '8>1']);
  const d = deriveNodes(model, stateAt(rec, rec.events.length));
  assert.equal(d.get('7>0').attempts, 1);
  assert.equal(d.get('8>1').attempts, 1);
});

test('else taken, a failed session resumed, a timed-out map item retried, three sessions', () => {
  const { model, rec } = record(everythingRun());
  let d = deriveNodes(model, stateAt(rec, rec.events.length));
  assert.equal(d.get('2/else').taken, true);
  assert.equal(d.get('2/then').taken, false);
  assert.equal(d.get('2/then/0').state, 'pending');
  assert.equal(d.get('3').iterations, 3);
  assert.equal(d.get('5').items, 5);
  assert.equal(d.get('5').state, 'retried');
  assert.equal(d.get('6').state, 'retried');
  // The timed-out item, before its retry.
  let s = after(rec, (e) => e.kind === 'end' && e.outcome === 'timed_out');
  d = deriveNodes(model, s);
  assert.equal(d.get('5').itemsFailed, 1);
  assert.equal(d.get('5').state, 'running', 'other items still run');
  // The stop after total failed: the run failed; then session 2 starts.
  s = after(rec, (e) => e.kind === 'entry' && e.record === 'stopped');
  assert.equal(s.runStatus, 'failed');
  d = deriveNodes(model, s);
  assert.equal(d.get('6').state, 'failed');
  assert.equal(d.get('7').state, 'pending');
  s = after(rec, startOf(rec, 'total', 2));
  assert.equal(s.runStatus, 'running');
  assert.equal(s.sessions, 2);
  assert.equal(stateAt(rec, rec.events.length).sessions, 3);
});

test('live: entries fed one by one through the reducer end where the recording ends', () => {
  const b = everythingRun();
  const model = buildModel(b.graph);
  const live = new Recording(model);
  live.setDocument({ ...b.document, status: 'running', updated_at: b.document.created_at });
  const s = initialState();
  let inserted = 0;
  for (const e of b.journal) {
    assert.equal(live.addEntry(e), true);
    const dirty = live.takeDirty();
    if (dirty < s.k) {
      inserted++;
      // An event landed before the position: start again (as the page does).
      Object.assign(s, stateAt(live, live.events.length));
    } else {
      for (let i = s.k; i < live.events.length; i++) applyEvent(s, live.events[i], live.traces);
    }
  }
  assert.ok(inserted > 0, 'the map items arrive out of time order');
  live.setDocument(b.document);
  for (let i = s.k; i < live.events.length; i++) applyEvent(s, live.events[i], live.traces);
  const { rec } = record(b);
  const want = deriveNodes(model, stateAt(rec, rec.events.length));
  const got = deriveNodes(model, s);
  for (const [k, v] of want) assert.deepEqual(got.get(k), v, k);
  assert.equal(s.runStatus, 'completed');
  // An entry seen twice (an SSE reconnect) is ignored.
  assert.equal(live.addEntry(b.journal[3]), false);
  assert.equal(live.traces.length, rec.traces.length);
});

test('no graph: attempts still get states and lanes, under their step', () => {
  const b = everythingRun();
  const { model, rec } = record({ ...b, graph: null });
  assert.equal(model.empty, true);
  const d = deriveNodes(model, stateAt(rec, rec.events.length));
  assert.equal(d.get('?1/0/0').state, 'retried');
  assert.equal(d.get('?audit>0').attempts, 2);
  const { lanes } = buildLanes(rec, model);
  assert.ok(lanes.some((l) => l.label === 'fetch'));
});

test('lanes: map items split into rows, retries linked, the long wait collapsed', () => {
  const { model, rec } = record(everythingRun());
  const { lanes, rowOf, prev } = buildLanes(rec, model);
  const work = lanes.find((l) => l.key === '5/body/0');
  assert.equal(work.rows, 2);
  assert.equal(work.count, 6);
  const fetches = rec.traces.filter((t) => t.step === 'fetch');
  assert.equal(prev[fetches[1].idx], fetches[0].idx);
  assert.equal(prev[fetches[2].idx], fetches[1].idx);
  assert.equal(prev[fetches[0].idx], -1);
  assert.ok(rowOf.every((r) => r >= 0));
  const axis = buildAxis(rec);
  const gaps = axis.pieces.filter((p) => p.gap);
  assert.ok(gaps.some((g) => g.t1 - g.t0 >= 59_000), 'the minute waiting for the answer is collapsed');
  assert.ok(axis.vmax < 3000);
  // Monotone.
  let last = -Infinity;
  for (const e of rec.events) {
    const v = axis.toV(e.t);
    assert.ok(v >= last);
    last = v;
  }
});

test('event log filters: kind, step, regex; a bad regex is an error, not an exception', () => {
  const { rec } = record(everythingRun());
  assert.deepEqual(compileFilter('('), { error: compileFilter('(').error });
  assert.ok(compileFilter('(').error);
  assert.equal(compileFilter('').re, null);
  const fails = filterEvents(rec.events, rec.traces, { re: compileFilter('upstream 503').re });
  assert.equal(fails.length, 2);
  const ends = filterEvents(rec.events, rec.traces, { kind: 'end', step: 'fetch' });
  assert.equal(ends.length, 3);
  const answers = filterEvents(rec.events, rec.traces, { kind: 'answer' });
  assert.equal(answers.length, 1);
});

test('a 10,000-attempt run builds and folds quickly', () => {
  const b = bigRun(10_000);
  const t0 = performance.now();
  const { model, rec } = record(b);
  const s = stateAt(rec, rec.events.length);
  const d = deriveNodes(model, s);
  buildLanes(rec, model);
  buildAxis(rec);
  const ms = performance.now() - t0;
  assert.equal(rec.traces.length, 10_000);
  assert.ok(d.get('1').iterations > 3000);
  assert.equal(d.get('2').items, rec.traces.filter((t) => t.item != null).length);
  assert.ok(ms < 1500, `${ms} ms`);
});

test('bundles are checked before they are shown', () => {
  assert.equal(checkBundle(everythingRun()), null);
  assert.match(checkBundle({ format: 'x' }), /not an orchflow bundle/);
  assert.match(checkBundle({ format: 'orchflow-bundle', version: 2 }), /version 2/);
  assert.match(checkBundle([]), /not a JSON object/);
  assert.match(checkBundle({ format: 'orchflow-bundle', version: 1, document: { run_id: 'x' } }), /no journal/);
});

test('builder sanity: the generated graph keys', () => {
  const m = buildModel(everythingGraph());
  assert.deepEqual(m.roots, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  assert.equal(m.byKey.get('7>1').parentKey, '7');
  assert.equal(m.byKey.get('3/body/1').ownerLoop, '3');
  const b = new RunBuilder();
  b.attempt({ step: 'x', node: '0' });
  b.point('AfterX');
  assert.equal(b.journal[0].traces.length, 1);
});

test('traces without a node (older checkpoints) land on the top-level step of their name', () => {
  const b = everythingRun();
  for (const e of b.journal) for (const t of e.traces ?? []) if (t.parent == null) delete t.node;
  const { model, rec } = record(b);
  const d = deriveNodes(model, stateAt(rec, rec.events.length));
  assert.equal(d.get('0').state, 'succeeded');
  assert.equal(d.get('1/0/0').state, 'retried');
  // Two steps named audit: ambiguous, so not placed.
  assert.ok(rec.traces.some((t) => t.key === '?audit'));
});

test('a queued run that never started stays queued; a created run runs', () => {
  const b = new RunBuilder({ graph: everythingGraph() });
  const { rec } = record(b.bundle('queued'));
  assert.equal(stateAt(rec, rec.events.length).runStatus, 'queued');
  const { rec: r2 } = record(everythingRun());
  assert.equal(stateAt(r2, 1).runStatus, 'running');
});
