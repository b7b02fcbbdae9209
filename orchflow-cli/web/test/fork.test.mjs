// A fork's own record, as the library writes it: every call the fork took from the recorded
// run is an attempt with the outcome "reused" (success true, no duration, the recorded input
// and output). Checked against two real forks of test/fixtures/replay-fixture.json (made by
// the library: see replay-generator.rs.txt): one from the loop's second call with an edited
// input (refine@2), one from a map item (work@2, whose other items are reused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { buildModel, Recording, stateAt, deriveNodes, STATES } from '../src/model.js';
import { buildLanes } from '../src/lanes.js';
import { filterEvents, eventText } from '../src/eventlog.js';
import { callNumbers, lineageView } from '../src/replay.js';

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/replay-fixture.json', import.meta.url), 'utf8'));
const forks = fixture.forks;

function recording(bundle) {
  const model = buildModel(bundle.graph);
  const rec = new Recording(model);
  rec.setDocument(bundle.document);
  rec.addEntries(bundle.journal);
  return { model, rec };
}

/** The raw traces of a bundle, in journal order. */
const rawTraces = (bundle) => bundle.journal.flatMap((e) => e.traces ?? []);

/** The index of the first event at which the fork's own work starts (its first run attempt). */
function forkPoint(rec) {
  return rec.events.findIndex((e) => e.kind === 'start' && rec.traces[e.trace].outcome !== 'reused');
}

test('the fixture: two completed forks whose calls before the fork point are reused attempts', () => {
  assert.deepEqual(Object.keys(forks).sort(), ['refine@2', 'work@2']);
  for (const [spec, f] of Object.entries(forks)) {
    const doc = f.bundle.document;
    assert.equal(doc.status, 'completed', spec);
    assert.equal(`${doc.lineage.forked_from.at.step}@${doc.lineage.forked_from.at.occurrence}`, spec);
    const raw = rawTraces(f.bundle);
    assert.ok(raw.every((t) => t.outcome === 'succeeded' || t.outcome === 'reused'), `${spec}: nothing failed`);
    for (const t of raw.filter((t) => t.outcome === 'reused')) {
      assert.equal(t.success, true, `${spec}: a reused attempt is a success`);
      assert.equal(t.duration, 0, `${spec}: a reused attempt takes no time`);
      assert.equal(t.started_at, t.ended_at, `${spec}: a reused attempt takes no time`);
    }
  }
  // refine@2: everything before the loop's second call is reused, the rest ran.
  const a = rawTraces(forks['refine@2'].bundle);
  assert.deepEqual(a.filter((t) => t.outcome === 'reused').map((t) => t.step), ['plan', 'fetch', 'docs', 'market', 'merge', 'refine']);
  // work@2: every call but the map's second item is reused, and what depends on it ran.
  const b = rawTraces(forks['work@2'].bundle);
  assert.deepEqual(b.filter((t) => t.outcome !== 'reused').map((t) => [t.step, t.item ?? null]), [['work', 1], ['total', null], ['publish', null]]);
});

test('a forked run at its end: steps whose attempts are all reused show reused, the others what they did', () => {
  assert.ok(STATES.indexOf('succeeded') < STATES.indexOf('reused') && STATES.indexOf('reused') < STATES.indexOf('pending'),
    'a node with reused and run attempts shows what ran');
  for (const [spec, f] of Object.entries(forks)) {
    const { model, rec } = recording(f.bundle);
    const d = deriveNodes(model, stateAt(rec, rec.events.length));
    // Every step, from its own raw attempts: all reused → reused; otherwise succeeded.
    const raw = rawTraces(f.bundle);
    for (const n of model.nodes.filter((x) => x.kind === 'step')) {
      const mine = raw.filter((t) => t.node === n.key);
      assert.ok(mine.length, `${spec}: step ${n.key} has attempts`);
      const want = mine.every((t) => t.outcome === 'reused') ? 'reused' : 'succeeded';
      assert.equal(d.get(n.key).state, want, `${spec}: step ${n.key} (${n.name})`);
    }
    // No node of a completed fork is pending: the reused calls are not missing attempts.
    for (const [key, v] of d) assert.notEqual(v.state, 'pending', `${spec}: node ${key}`);
    // The group before the fork point was reused as a whole, branches included.
    for (const key of ['2', '2/0', '2/1']) assert.equal(d.get(key).state, 'reused', `${spec}: ${key}`);
    assert.equal(d.get('4').iterations, 3, `${spec}: the loop ran (or reused) three iterations`);
    assert.equal(d.get('6').items, 3, `${spec}: three map items`);
    assert.equal(d.get('6').itemsDone, 3, `${spec}: a reused item is done`);
    assert.equal(d.get('6').itemsFailed, 0);
  }
  const a = deriveNodes(recording(forks['refine@2'].bundle).model, stateAt(recording(forks['refine@2'].bundle).rec, Infinity));
  assert.equal(a.get('4/body/0').state, 'succeeded', 'refine: one iteration reused, two ran');
  assert.equal(a.get('4').state, 'succeeded');
  const b = deriveNodes(recording(forks['work@2'].bundle).model, stateAt(recording(forks['work@2'].bundle).rec, Infinity));
  assert.equal(b.get('4').state, 'reused', 'a loop whose iterations were all reused');
  assert.equal(b.get('6/body/0').state, 'succeeded', 'work: items 0 and 2 reused, item 1 ran');
  assert.equal(b.get('6').state, 'succeeded');
});

test('a forked run at its fork point: the reused part is done, the container around the fork point still runs', () => {
  for (const [spec, f] of Object.entries(forks)) {
    const { model, rec } = recording(f.bundle);
    // A reused attempt takes no time: it starts, then ends, then its journal entry follows (the
    // moment "after entry n" includes the calls that entry recorded).
    for (const t of rec.traces) {
      const entry = rec.events.findIndex((e) => (e.kind === 'entry' || e.kind === 'answer') && e.seq === t.seq);
      assert.ok(t.startIdx < t.endIdx && t.endIdx < entry, `${spec}: ${t.step} (${t.outcome}) before its entry #${t.seq}`);
    }
    const k = forkPoint(rec);
    assert.ok(k > 0, spec);
    const before = deriveNodes(model, stateAt(rec, k));
    const reusedKeys = new Set(rec.traces.filter((t) => t.startIdx < k).map((t) => t.key));
    for (const t of rec.traces.filter((t) => t.startIdx < k)) assert.equal(t.outcome, 'reused', `${spec}: only reused attempts before the fork point`);
    for (const key of reusedKeys) assert.equal(before.get(key).state, 'reused', `${spec}: ${key} at the fork point`);
    for (const n of model.nodes.filter((x) => x.kind === 'step' && !reusedKeys.has(x.key))) {
      assert.equal(before.get(n.key).state, 'pending', `${spec}: ${n.key} has not started at the fork point`);
    }
    // The fork's first run attempt starts at k.
    const after = deriveNodes(model, stateAt(rec, k + 1));
    const first = rec.traces[rec.events[k].trace];
    assert.equal(after.get(first.key).state, 'running', `${spec}: ${first.step} runs`);
  }
  // refine@2: the loop has been entered once (the reused iteration) and is not done.
  const { model, rec } = recording(forks['refine@2'].bundle);
  const d = deriveNodes(model, stateAt(rec, forkPoint(rec)));
  assert.equal(d.get('4').state, 'running');
  assert.equal(d.get('4').iterations, 1);
  // work@2: item 0 reused, the map is running.
  const w = recording(forks['work@2'].bundle);
  const dw = deriveNodes(w.model, stateAt(w.rec, forkPoint(w.rec)));
  assert.equal(dw.get('6').state, 'running');
  assert.equal(dw.get('6').items, 1);
});

test('call numbers of a fork’s own record: reused attempts are calls, as the library counts them', () => {
  for (const [spec, f] of Object.entries(forks)) {
    const { rec } = recording(f.bundle);
    const numbers = callNumbers(rec.traces);
    const lib = new Map(f.calls.filter((c) => !c.error).map((c) => [c.spec, c]));
    assert.ok(rec.traces.some((t) => t.outcome === 'reused'), spec);
    // The fork's own call ran with its edited input; the library's call there carries the
    // input the code passes (the reused output before it), which a fork of this fork at the
    // same call gets unless the page sends the input (see `forkOffer` in runview.js).
    const origin = f.bundle.document.lineage.forked_from;
    const edited = origin.input !== undefined ? `${origin.at.step}@${origin.at.occurrence}` : null;
    const seen = new Set();
    rec.traces.forEach((t, i) => {
      const n = numbers[i];
      assert.ok(n, `${spec}: attempt ${i} (${t.step}, ${t.outcome}) belongs to no call`);
      const c = lib.get(n.spec);
      assert.ok(c, `${spec}: the library has no call ${n.spec}`);
      assert.equal(c.node, t.node, `${spec} ${n.spec}: node`);
      if (n.spec === edited) {
        assert.deepEqual(t.input, origin.input, `${spec}: the fork's call ran with the edited input`);
        assert.notDeepEqual(c.input, t.input, `${spec}: the library would call ${n.spec} with the code's input`);
      } else {
        assert.deepEqual(c.input, t.input, `${spec} ${n.spec}: input`);
      }
      if (t.item != null) assert.deepEqual(c.iterations, [t.item], `${spec} ${n.spec}: map item`);
      seen.add(n.spec);
    });
    assert.deepEqual([...seen].sort(), [...lib.keys()].sort(), `${spec}: every call the library finds`);
  }
  // In the refine@2 fork the reused first iteration is refine@1, the edited one refine@2.
  const { rec } = recording(forks['refine@2'].bundle);
  const numbers = callNumbers(rec.traces);
  const refine = rec.traces.map((t, i) => [t, numbers[i]]).filter(([t]) => t.step === 'refine');
  assert.deepEqual(refine.map(([t, n]) => [t.outcome, n.spec, t.input]), [['reused', 'refine@1', 25], ['succeeded', 'refine@2', 7], ['succeeded', 'refine@3', 8]]);
  // Without `success` (older traces), the outcome decides: reused is a success.
  const tr = (step, outcome) => ({ step, node: step, parent: null, item: null, outcome, raw: {} });
  assert.deepEqual(callNumbers([tr('a', 'reused'), tr('a', 'succeeded'), tr('b', 'reused')]).map((x) => x?.spec), ['a@1', 'a@2', 'b@1']);
});

test('lanes, the event log and the header of a fork: no retry joins, reused rows, the note', () => {
  for (const [spec, f] of Object.entries(forks)) {
    const { model, rec } = recording(f.bundle);
    const { prev } = buildLanes(rec, model);
    rec.traces.forEach((t, i) => assert.equal(prev[i], -1, `${spec}: ${t.step} (${t.outcome}) retries nothing`));
    const reused = rec.traces.filter((t) => t.outcome === 'reused');
    // Filtering by outcome: the start and end of every reused attempt, nothing else.
    const rows = filterEvents(rec.events, rec.traces, { outcome: 'reused' });
    assert.equal(rows.length, 2 * reused.length, spec);
    assert.ok(rows.every((i) => rec.traces[rec.events[i].trace].outcome === 'reused'));
    const ends = filterEvents(rec.events, rec.traces, { outcome: 'reused', kind: 'end' });
    assert.equal(ends.length, reused.length);
    for (const i of ends) assert.match(eventText(rec.events[i], rec.traces), /^\w+( #\d+)? reused: the recorded result, not run again \(attempt 1\)$/);
    assert.equal(filterEvents(rec.events, rec.traces, { outcome: 'failed' }).length, 0, `${spec}: nothing failed`);
    // The regex filter finds them by outcome too.
    assert.equal(filterEvents(rec.events, rec.traces, { re: /reused/, kind: 'end' }).length, reused.length);
    // The header's note points at them.
    const v = lineageView(f.bundle.document, reused.length);
    assert.equal(v.forkedFrom.spec, spec);
    assert.equal(v.forkedFrom.note, `the ${reused.length} calls before it took that run’s results: their attempts are marked reused`);
  }
  assert.equal(lineageView(forks['refine@2'].bundle.document, 1).forkedFrom.note, 'the 1 call before it took that run’s results: its attempt is marked reused');
  assert.match(lineageView(forks['refine@2'].bundle.document).forkedFrom.note, /once the fork runs/, 'a fork not run yet');
});
