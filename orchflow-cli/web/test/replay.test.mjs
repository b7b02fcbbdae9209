// Replay and fork, the pure part: call numbering (`step@n`) checked against what the library
// says of a real recording (test/fixtures/replay-fixture.json, made by the library: see
// replay-generator.rs.txt), replay reports in plain words, fork previews as a table, the
// request built from the input editor, and lineage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { buildModel, Recording } from '../src/model.js';
import { callNumbers, reportView, previewRows, forkBody, lineageView, whyNoReplay, flowInBuild, resumeView } from '../src/replay.js';

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/replay-fixture.json', import.meta.url), 'utf8'));

function recording(bundle) {
  const rec = new Recording(buildModel(bundle.graph));
  rec.setDocument(bundle.document);
  rec.addEntries(bundle.journal);
  return rec;
}

/** A trace as the model keeps it, for synthetic recordings. */
const tr = (step, outcome, extra = {}) => ({ step, node: extra.node ?? step, parent: extra.parent ?? null, item: extra.item ?? null, outcome, raw: { success: outcome === 'succeeded' } });

test('call numbers: every attempt of the real recording names the call the library places at that spec', () => {
  const rec = recording(fixture.bundle);
  const numbers = callNumbers(rec.traces);
  const lib = new Map(fixture.calls.filter((c) => !c.error).map((c) => [c.spec, c]));
  // The recording has retries (fetch), a loop, a map, a group and a call failed in session 1
  // and made again in session 2 (publish): every attempt belongs to a call.
  assert.ok(rec.traces.some((t) => t.step === 'fetch' && t.outcome === 'failed'));
  assert.ok(rec.traces.some((t) => t.step === 'publish' && t.outcome === 'failed' && t.session === 1));
  assert.ok(rec.traces.some((t) => t.step === 'publish' && t.outcome === 'succeeded' && t.session === 2));
  const seen = new Set();
  rec.traces.forEach((t, i) => {
    const n = numbers[i];
    assert.ok(n, `attempt ${i} (${t.step}) belongs to no call`);
    const c = lib.get(n.spec);
    assert.ok(c, `the library has no call ${n.spec} (attempt ${i})`);
    assert.equal(c.node, t.node, `${n.spec}: node`);
    assert.deepEqual(c.input, t.input, `${n.spec}: input`);
    if (t.item != null) assert.deepEqual(c.iterations, [t.item], `${n.spec}: map item`);
    seen.add(n.spec);
  });
  // Every call the library knows is some attempt's call, and the ones past the end are not.
  assert.deepEqual([...seen].sort(), [...lib.keys()].sort());
  // The three loop iterations are refine@1..3 in order, the map items work@1..3.
  const specsOf = (step) => rec.traces.map((t, i) => [t, numbers[i]]).filter(([t]) => t.step === step).map(([, n]) => n.spec);
  assert.deepEqual(specsOf('refine'), ['refine@1', 'refine@2', 'refine@3']);
  assert.deepEqual(specsOf('fetch'), ['fetch@1', 'fetch@1'], 'a retried call counts once');
  assert.deepEqual(specsOf('publish'), ['publish@1', 'publish@1'], 'a failed call made again in the next session counts once');
});

test('call numbers: the rules of locate on synthetic recordings', () => {
  // A call failed twice and never made again counts once; its last attempt stands for it.
  let n = callNumbers([tr('a', 'succeeded'), tr('b', 'failed'), tr('b', 'failed')]);
  assert.deepEqual(n.map((x) => x?.spec), ['a@1', 'b@1', 'b@1']);
  assert.equal(n[1].trace, 2);
  // A step at two places (two nodes) numbers its calls in the order they were made.
  n = callNumbers([tr('s', 'succeeded', { node: '0' }), tr('t', 'succeeded'), tr('s', 'succeeded', { node: '2' })]);
  assert.deepEqual(n.map((x) => x?.spec), ['s@1', 't@1', 's@2']);
  // A failed call retried after another call ended: the call is ordered by its success.
  n = callNumbers([tr('x', 'failed', { node: '0' }), tr('x', 'succeeded', { node: '1' }), tr('x', 'succeeded', { node: '0' })]);
  assert.deepEqual(n.map((x) => x?.spec), ['x@2', 'x@1', 'x@2']);
  // A cancelled attempt is no call; it belongs to the call made at its place next, if one.
  n = callNumbers([tr('c', 'cancelled'), tr('d', 'succeeded'), tr('c', 'succeeded')]);
  assert.deepEqual(n.map((x) => x?.spec), ['c@1', 'd@1', 'c@1']);
  n = callNumbers([tr('c', 'cancelled'), tr('d', 'failed')]);
  assert.equal(n[0], null);
  assert.equal(n[1].spec, 'd@1');
  // A suspended call (asked a question) counts once; map items are places of their own.
  n = callNumbers([tr('ask', 'suspended'), tr('ask', 'succeeded'), tr('w', 'succeeded', { item: 1 }), tr('w', 'succeeded', { item: 0 })]);
  assert.deepEqual(n.map((x) => x?.spec), ['ask@1', 'ask@1', 'w@1', 'w@2']);
  // Nested flows: the parent is part of the place.
  n = callNumbers([tr('in', 'succeeded', { parent: 'outer', node: '0' }), tr('in', 'succeeded', { parent: 'other', node: '0' })]);
  assert.deepEqual(n.map((x) => x?.spec), ['in@1', 'in@2']);
  assert.deepEqual(callNumbers([]), []);
});

test('replay report: compatible and finished', () => {
  const v = reportView(fixture.reports.same);
  assert.equal(v.verdict, 'compatible');
  assert.match(v.title, /^Compatible: the current build makes every recorded call/);
  assert.equal(v.divergence, null);
  assert.equal(v.continues, null, 'a finished run continues nowhere');
  assert.equal(v.resume.kind, 'finished');
  assert.ok(v.facts.some((f) => f.includes('(same)')));
  assert.ok(v.facts.includes('14 calls answered from the recording'));
});

test('replay report: a divergence with its path, message, both calls and the new source', () => {
  const r = fixture.reports.added;
  const v = reportView(r);
  assert.equal(v.verdict, 'diverges');
  assert.equal(v.title, 'Diverges at step audit: the recorded run called `publish` here; the new code calls `audit`');
  assert.equal(v.divergence.path, 'step audit');
  assert.equal(v.divergence.kind, 'step_changed');
  assert.equal(v.divergence.kindText, 'another step is called here');
  assert.deepEqual(v.divergence.recorded, { step: 'publish', path: 'step publish', input: '870', source: null });
  assert.equal(v.divergence.new.step, 'audit');
  assert.equal(v.divergence.new.input, '870');
  assert.equal(v.divergence.new.source, `${r.new.source.file}:${r.new.source.line}:${r.new.source.column}`);
  assert.match(v.divergence.new.source, /^src\/main\.rs:\d+:\d+$/);
  assert.ok(!v.facts.some((f) => f.includes('(same)')), 'another fingerprint');
  const bound = reportView(fixture.reports.loop_bound);
  assert.equal(bound.divergence.kind, 'input_changed');
  assert.equal(bound.divergence.recorded.input, '28');
  assert.equal(bound.divergence.new.input, '27');
});

test('replay report: a compatible unfinished run says where it continues and whether it resumes', () => {
  const v = reportView(fixture.reports.unfinished);
  assert.equal(v.verdict, 'compatible');
  assert.deepEqual(v.continues.map((c) => [c.step, c.path]), [['publish', 'step publish']]);
  assert.equal(v.continues[0].input, '570');
  assert.equal(v.resume.kind, 'same_shape');
  assert.ok(v.resume.ok);
  assert.match(v.resume.text, /same shape/);
});

test('replay report: unreplayable, the resume checks, nonsense', () => {
  const base = { run_id: 'r', flow: 'f', status: 'suspended', recorded_fingerprint: 'a', fingerprint: '', reused: 0, reexecuted: 0, continues_at: [] };
  const u = reportView({ ...base, outcome: 'unreplayable', reason: 'this build has no flow `f`', resume: 'undeclared' });
  assert.equal(u.verdict, 'unreplayable');
  assert.equal(u.title, 'Cannot be replayed: this build has no flow `f`');
  assert.equal(u.resume.kind, 'undeclared');
  assert.equal(u.resume.ok, false);
  assert.match(u.resume.text, /does not declare compatible/);
  const d = resumeView({ resume: 'declared', resume_reason: 'reviewed: the new audit step is pure' });
  assert.ok(d.ok);
  assert.match(d.text, /declares the recorded fingerprint compatible \(reviewed: the new audit step is pure\)/);
  const x = resumeView({ resume: 'undecodable', resume_reason: 'missing field `n`' });
  assert.equal(x.ok, false);
  assert.match(x.text, /missing field `n`$/);
  const c = reportView({ ...base, outcome: 'compatible', resume: 'same_shape', continues_at: [] });
  assert.deepEqual(c.continues, [], 'unfinished, nothing new to call');
  assert.equal(reportView(null).verdict, 'unknown');
  assert.match(reportView({ ...base, outcome: 'weird', resume: 'finished' }).title, /Unknown outcome "weird"/);
});

test('fork preview: rows with reuse in words, the side-effect marks and the fork call', () => {
  const p = previewRows(fixture.previews['refine@2']);
  assert.deepEqual(p.at, { step: 'refine', path: 'loop refine[1] > step refine' });
  const lib = fixture.previews['refine@2'].steps;
  assert.equal(p.rows.length, lib.length);
  p.rows.forEach((r, i) => {
    assert.equal(r.step, lib[i].call.step);
    assert.equal(r.path, lib[i].call.path);
    assert.equal(r.reuse, lib[i].reuse);
    assert.equal(r.sideEffects, lib[i].repeats_side_effects);
  });
  const before = p.rows.slice(0, p.rows.findIndex((r) => r.isAt));
  assert.deepEqual(before.map((r) => r.step), ['plan', 'fetch', 'docs', 'market', 'merge', 'refine']);
  assert.ok(before.every((r) => r.label === 'reused'));
  assert.equal(p.rows.filter((r) => r.isAt).length, 1);
  const at = p.rows.find((r) => r.isAt);
  assert.equal(at.label, 'runs again');
  assert.ok(at.sideEffects, 'the recording ran refine@2 to completion');
  const counts = { reused: 0, rerun: 0, new: 0 };
  for (const r of p.rows) counts[r.reuse]++;
  const effects = p.rows.filter((r) => r.sideEffects).length;
  assert.equal(p.summary, `${counts.reused} reused, ${counts.rerun} run again, ${counts.new} new; ${effects} calls will repeat side effects`);
  const n = previewRows({ at: { step: 'a', path: 'step a' }, steps: [{ call: { step: 'a', path: 'step a' }, reuse: 'new', repeats_side_effects: false }] });
  assert.equal(n.rows[0].label, 'new');
  assert.equal(n.summary, '0 reused, 0 run again, 1 new');
  assert.deepEqual(previewRows(null).rows, []);
});

test('fork request: invalid JSON is caught, the recorded input is not sent as an edit', () => {
  assert.deepEqual(forkBody('refine@2', '26', 26), { body: { from: 'refine@2' } });
  assert.deepEqual(forkBody('refine@2', ' 7 ', 26), { body: { from: 'refine@2', input: 7 } });
  assert.deepEqual(forkBody('a@1', '', 26), { body: { from: 'a@1' } });
  assert.deepEqual(forkBody('a@1', '{"b": 1, "a": [2]}', { a: [2], b: 1 }), { body: { from: 'a@1' } }, 'same value, other key order');
  assert.deepEqual(forkBody('a@1', '{"a": 1}', undefined), { body: { from: 'a@1', input: { a: 1 } } });
  assert.deepEqual(forkBody('a@1', 'null', 3), { body: { from: 'a@1', input: null } });
  const bad = forkBody('a@1', '{"a": 1,}', 3);
  assert.ok(!bad.body);
  assert.match(bad.error, /^the input is not valid JSON: /);
  assert.match(forkBody('a@1', 'seven', 7).error, /not valid JSON/);
});

test('lineage: forked from a call with an edited input, forks, none', () => {
  const from = 'fb86712d-4cd0-48ac-a6d5-c5b0d507d0ea';
  const v = lineageView({ lineage: { forked_from: { run_id: from, at: { step: 'refine', occurrence: 2 }, path: 'loop refine[1] > step refine', input: 7, fingerprint: 'x' } } }, 6);
  const note = 'the 6 calls before it took that run’s results: their attempts are marked reused';
  assert.deepEqual(v, { forkedFrom: { runId: from, spec: 'refine@2', path: 'loop refine[1] > step refine', input: '7', note }, forks: [] });
  const w = lineageView({ lineage: { forked_from: { run_id: from, at: { step: 'plan', occurrence: 1 }, path: 'step plan', fingerprint: 'x' }, forks: ['b', 'c'] } });
  assert.equal(w.forkedFrom.input, null, 'no edited input');
  assert.deepEqual(w.forks, ['b', 'c']);
  assert.deepEqual(lineageView({ lineage: { forks: ['z'] } }), { forkedFrom: null, forks: ['z'] });
  assert.equal(lineageView({ lineage: {} }), null);
  assert.equal(lineageView({}), null);
  assert.equal(lineageView(fixture.bundle.document), null, 'a recorded run with no lineage');
});

test('replay and fork are offered only for flows of the build serving', () => {
  const info = { flows: [{ name: 'fixture', fingerprint: 'abc' }] };
  assert.equal(flowInBuild(info, 'fixture').fingerprint, 'abc');
  assert.equal(whyNoReplay(info, 'fixture'), null);
  assert.match(whyNoReplay(info, 'other'), /started without the code of flow other: build an app binary with orchflow_cli::App/);
  assert.match(whyNoReplay({ flows: [] }, 'fixture'), /orchflow_cli::App/);
  assert.match(whyNoReplay({}, 'fixture'), /orchflow_cli::App/, 'an older server lists no flows');
  assert.match(whyNoReplay(null, 'fixture'), /has not said/);
  assert.match(whyNoReplay(info, 'fixture', { readOnly: true }), /bundle/);
});
