// Fixture runs in the shapes the Rust library writes (RunDocument, JournalEntry with
// StepTrace, FlowGraph; see orchflow-core/src/{store/mod.rs,trace.rs,graph.rs}), built in
// code so that tests can make the cases they need. The recordings in fixtures/*.bundle.json
// were written by the library itself (fixtures/showcase-generator.rs.txt, a small program over orchflow with a JSON store); these mimic them.
//
// `node test/gen.mjs big 10000 > big.json` writes a bundle of a 10,000-attempt run.

const T0 = Date.parse('2026-12-03T10:00:00Z');

/** RFC 3339 with nanoseconds, as humantime writes it. */
export function iso(ms) {
  const whole = Math.floor(ms);
  const base = new Date(whole).toISOString().slice(0, 19);
  const nanos = Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6);
  return `${base}.${String(nanos).padStart(9, '0')}Z`;
}

const step = (id, parent, name, extra = {}) => ({ id, parent, label: name, kind: 'step', name, by_path: true, ...extra });

/** Builds a journal attempt by attempt. Times are ms offsets from the run's start. */
export class RunBuilder {
  constructor({ flow = 'fixture', graph = null, input = null, runId = '00000000-0000-4000-8000-000000000001', t0 = T0 } = {}) {
    this.flow = flow;
    this.graph = graph;
    this.input = input;
    this.runId = runId;
    this.t0 = t0;
    this.now = 1;
    this.session = 1;
    this.journal = [];
    this.traces = [];
  }

  /** One attempt: starts at `at` (default now), lasts `dur` ms; moves `now` to its end unless `keep`. */
  attempt({ step: name, node, parent = null, outcome = 'succeeded', dur = 5, at = this.now, attempt = 1, item = null, group = null, input = null, output = null, error = null, keep = false }) {
    const start = this.t0 + at;
    const end = start + dur;
    this.traces.push({
      step: name, node, parent, attempt, session: this.session, parallel_group_id: group, item,
      input, output: outcome === 'succeeded' ? output : null,
      error: outcome === 'succeeded' ? null : (error ?? (outcome === 'suspended' ? 'waiting for an answer' : `${name} failed`)),
      outcome, started_at: iso(start), ended_at: iso(end), duration: dur / 1000, success: outcome === 'succeeded',
    });
    if (!keep) this.now = Math.max(this.now, at + dur);
    return at + dur;
  }

  /** A journal entry with the attempts since the last one. */
  entry(record, extra = {}) {
    this.journal.push({ seq: this.journal.length + 1, record, ...(this.traces.length ? { traces: this.traces } : {}), ...extra });
    this.traces = [];
  }

  point(name, value = null) {
    this.entry({ point: { [name]: value } });
  }

  /** The next session (a resume) starts `after` ms later. */
  resume(after = 1000) {
    this.session++;
    this.now += after;
  }

  document(status, extra = {}) {
    return {
      format: 'orchflow-checkpoint', version: 2, run_id: this.runId, flow: this.flow,
      fingerprint: this.graph?.fingerprint ?? '0000000000000000', shape: 'fixture', input: this.input,
      status, pending: [], output: null, error: null,
      created_at: iso(this.t0), updated_at: iso(this.t0 + this.now + 1), ...extra,
    };
  }

  bundle(status, extra = {}) {
    return { format: 'orchflow-bundle', version: 1, exported_at: iso(this.t0 + this.now + 2), document: this.document(status, extra), journal: this.journal, graph: this.graph };
  }
}

/** The graph of a flow with every construct; the nested flow `audit` is run by two steps (7, 8). */
export function everythingGraph() {
  const audit = {
    name: 'audit', fingerprint: 'aaaaaaaaaaaaaaaa',
    nodes: [step('0', null, 'check'), step('1', null, 'stamp')],
    edges: [{ from: '0', to: '1', kind: 'sequence' }], flows: [],
  };
  const flowRef = { name: 'audit', fingerprint: 'aaaaaaaaaaaaaaaa' };
  return {
    name: 'everything', fingerprint: '1234567890abcdef',
    nodes: [
      step('0', null, 'plan'),
      { id: '1', parent: null, label: '[…]', kind: 'group', branches: 2 },
      { id: '1/0', parent: '1', label: '0', kind: 'branch', index: 0 },
      step('1/0/0', '1/0', 'fetch', { retry: 3 }),
      { id: '1/1', parent: '1', label: '1', kind: 'branch', index: 1 },
      step('1/1/0', '1/1', 'market', { timeout_ms: 50 }),
      { id: '2', parent: null, label: 'if', kind: 'if', predicate: 'small' },
      { id: '2/then', parent: '2', label: 'then', kind: 'arm', then: true },
      step('2/then/0', '2/then', 'publish'),
      { id: '2/else', parent: '2', label: 'else', kind: 'arm', then: false },
      step('2/else/0', '2/else', 'revise'),
      { id: '3', parent: null, label: 'loop', kind: 'loop', max: 5, until: 'good' },
      step('3/body/0', '3', 'refine'),
      step('3/body/1', '3', 'score'),
      step('4', null, 'split'),
      { id: '5', parent: null, label: 'map', kind: 'map', limit: 2 },
      step('5/body/0', '5', 'work', { retry: 1 }),
      step('6', null, 'total'),
      { ...step('7', null, 'audit', { flow: flowRef }), label: 'inner', by_path: false },
      { ...step('8', null, 'audit', { flow: flowRef }), label: 'inner', by_path: false },
      step('9', null, 'review'),
      step('10', null, 'decide'),
    ],
    edges: [
      { from: '3/body/0', to: '3/body/1', kind: 'sequence' },
      { from: '3/body/1', to: '3/body/0', kind: 'repeat' },
      ...['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].slice(0, -1).map((f, i) => ({ from: f, to: String(i + 1), kind: 'sequence' })),
    ],
    flows: [audit],
  };
}

/**
 * A run of `everythingGraph`: fetch fails twice (backoff 15 ms, 30 ms) beside market; the
 * else arm is taken; the loop runs 3 times; the map runs 5 items two at a time (item 3 fails
 * once, then succeeds); `total` fails in session 1 and the run is resumed (session 2) 2 s
 * later; both audit steps run their nested flow; review suspends (session 2) and, when
 * `answered`, a session 3 answers it and the run completes.
 */
export function everythingRun({ answered = true } = {}) {
  const b = new RunBuilder({ flow: 'everything', graph: everythingGraph(), input: 'hello' });
  b.attempt({ step: 'plan', node: '0', dur: 4, output: 5 });
  b.point('AfterPlan', 5);
  const g0 = b.now;
  let t = b.attempt({ step: 'fetch', node: '1/0/0', at: g0, dur: 5, outcome: 'failed', group: 1, error: 'upstream 503', keep: true });
  b.attempt({ step: 'market', node: '1/1/0', at: g0, dur: 12, group: 1, output: 10, keep: true });
  b.entry({ branch: { group: 'InGroup1', index: 1, value: 10 } });
  t = b.attempt({ step: 'fetch', node: '1/0/0', at: t + 15, dur: 5, outcome: 'failed', attempt: 2, group: 1, error: 'upstream 503', keep: true });
  t = b.attempt({ step: 'fetch', node: '1/0/0', at: t + 30, dur: 5, attempt: 3, group: 1, output: 6, keep: true });
  b.now = t;
  b.entry({ branch: { group: 'InGroup1', index: 0, value: 6 } });
  b.point('AfterGroup1', [6, 10]);
  b.attempt({ step: 'revise', node: '2/else/0', dur: 3, output: 16 });
  b.point('AfterIf2', 16);
  for (let i = 0; i < 3; i++) {
    b.attempt({ step: 'refine', node: '3/body/0', dur: 4 });
    b.entry({ inner: { name: 'Inner1AfterRefine', path: [i], value: 100 * (i + 1) } });
    b.attempt({ step: 'score', node: '3/body/1', dur: 3 });
    b.point('Loop3', { iteration: i + 1, value: 100 * (i + 1) });
  }
  b.attempt({ step: 'split', node: '4', dur: 1 });
  b.point('AfterSplit', [1, 2, 3, 4, 5]);
  const m0 = b.now;
  const ends = [m0, m0];
  for (let item = 0; item < 5; item++) {
    const lane = ends[0] <= ends[1] ? 0 : 1;
    let at = ends[lane];
    if (item === 3) {
      at = b.attempt({ step: 'work', node: '5/body/0', at, dur: 4, outcome: 'timed_out', item, group: 2, error: 'timed out after 4ms', keep: true }) + 5;
      ends[lane] = b.attempt({ step: 'work', node: '5/body/0', at, dur: 6, attempt: 2, item, group: 2, keep: true });
    } else {
      ends[lane] = b.attempt({ step: 'work', node: '5/body/0', at, dur: 5 + item, item, group: 2, keep: true });
    }
    b.entry({ inner: { name: 'Inner2MapWork', path: [item], value: item * 10 } });
  }
  b.now = Math.max(...ends);
  b.point('AfterMap5', [0, 10, 20, 30, 40]);
  b.attempt({ step: 'total', node: '6', dur: 2, outcome: 'failed', error: 'database is locked' });
  b.entry('stopped');
  b.resume(2000);
  b.attempt({ step: 'total', node: '6', dur: 2, output: 100 });
  b.point('AfterTotal', 100);
  for (const node of ['7', '8']) {
    const s0 = b.now;
    b.attempt({ step: 'check', node: '0', parent: 'audit', at: s0 + 0.01, dur: 3, keep: true });
    b.attempt({ step: 'stamp', node: '1', parent: 'audit', at: s0 + 3.01, dur: 1, keep: true });
    b.attempt({ step: 'audit', node, at: s0, dur: 4.05 });
    b.point(`AfterInner${node}`, 'v100');
  }
  b.attempt({ step: 'review', node: '9', dur: 0.02, outcome: 'suspended', error: 'waiting for an answer to: publish?' });
  b.entry('stopped');
  if (!answered) {
    return b.bundle('suspended', { pending: [{ question: 'review', step: 'review', prompt: 'publish?' }] });
  }
  b.entry({ answer: { question: 'review', text: 'yes' } });
  b.resume(60_000);
  b.attempt({ step: 'review', node: '9', dur: 0.02, output: { text: 'yes', value: 'v100' } });
  b.entry({ point: { AfterReview: { text: 'yes', value: 'v100' } } }, { answered: ['review'] });
  b.attempt({ step: 'decide', node: '10', dur: 0.01, output: 'v100 -> yes' });
  b.point('AfterDecide', 'v100 -> yes');
  return b.bundle('completed', { output: 'v100 -> yes' });
}

/** A run of about `steps` attempts: a loop of fetch => parse, then a map, with a retry every 97th fetch. */
export function bigRun(steps = 10_000) {
  const graph = {
    name: 'crawler', fingerprint: 'b16b16b16b16b16b',
    nodes: [
      step('0', null, 'seed'),
      { id: '1', parent: null, label: 'loop', kind: 'loop', max: 100000, until: 'done' },
      step('1/body/0', '1', 'fetch', { retry: 2 }),
      step('1/body/1', '1', 'parse'),
      { id: '2', parent: null, label: 'map', kind: 'map', limit: 8 },
      step('2/body/0', '2', 'index'),
      step('3', null, 'report'),
    ],
    edges: [
      { from: '1/body/0', to: '1/body/1', kind: 'sequence' },
      { from: '1/body/1', to: '1/body/0', kind: 'repeat' },
      { from: '0', to: '1', kind: 'sequence' },
      { from: '1', to: '2', kind: 'sequence' },
      { from: '2', to: '3', kind: 'sequence' },
    ],
    flows: [],
  };
  const b = new RunBuilder({ flow: 'crawler', graph, input: { site: 'example.org' }, runId: '00000000-0000-4000-8000-00000000b16b' });
  b.attempt({ step: 'seed', node: '0', dur: 2 });
  b.point('AfterSeed', 1);
  const loops = Math.floor((steps * 0.7) / 2);
  for (let i = 0; i < loops; i++) {
    if (i % 97 === 5) {
      const e = b.attempt({ step: 'fetch', node: '1/body/0', dur: 3, outcome: 'failed', error: 'connection reset', input: { page: i } });
      b.now = e + 4;
      b.attempt({ step: 'fetch', node: '1/body/0', dur: 3, attempt: 2, input: { page: i }, output: { bytes: 1000 + i } });
    } else {
      b.attempt({ step: 'fetch', node: '1/body/0', dur: 2 + (i % 5), input: { page: i }, output: { bytes: 1000 + i } });
    }
    b.entry({ inner: { name: 'Inner1AfterFetch', path: [i], value: { bytes: 1000 + i } } });
    b.attempt({ step: 'parse', node: '1/body/1', dur: 1 });
    b.point('Loop1', { iteration: i + 1, value: i });
  }
  const items = steps - b.journal.reduce((n, e) => n + (e.traces?.length ?? 0), 0) - 1;
  const lanes = new Array(8).fill(b.now);
  for (let item = 0; item < items; item++) {
    let lane = 0;
    for (let l = 1; l < 8; l++) if (lanes[l] < lanes[lane]) lane = l;
    lanes[lane] = b.attempt({ step: 'index', node: '2/body/0', at: lanes[lane], dur: 3 + (item % 7), item, group: 1, keep: true });
    b.entry({ inner: { name: 'Inner2MapIndex', path: [item], value: item } });
  }
  b.now = Math.max(...lanes);
  b.point('AfterMap2', items);
  b.attempt({ step: 'report', node: '3', dur: 5 });
  b.point('AfterReport', 'ok');
  return b.bundle('completed', { output: 'ok' });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [what = 'everything', n] = process.argv.slice(2);
  const out = what === 'big' ? bigRun(Number(n) || 10_000) : what === 'suspended' ? everythingRun({ answered: false }) : everythingRun();
  process.stdout.write(JSON.stringify(out));
}
