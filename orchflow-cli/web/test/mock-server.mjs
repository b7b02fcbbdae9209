// A stand-in for `orchflow serve`, for working on the viewer without the Rust server: serves
// ../assets and the JSON API of notes/viewer-contract.md from fixture runs held in memory.
//
//   node test/mock-server.mjs [port]        (default 7879)
//
// Runs: the two recordings written by the library, the generated "everything" runs, a
// 10,000-attempt run, 1,200 filler runs (paging), and a live run that replays the
// "everything" journal over ~6 s through /events each time it is opened fresh. The run of
// replay-fixture.json is of flow `fixture`, which the mock's "build" has (`/api/info` lists it):
// its Replay answers the fixture's diverging report, its fork preview the fixture's previews, and
// a fork copies it with the lineage written on both runs.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { everythingRun, bigRun, iso } from './gen.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../../assets');
const port = Number(process.argv[2] || 7879);

const runs = new Map(); // id → {document, journal, graph}
const add = (b) => runs.set(b.document.run_id, { document: b.document, journal: b.journal, graph: b.graph });
for (const f of ['showcase-completed.bundle.json', 'showcase-suspended.bundle.json']) {
  const b = JSON.parse(fs.readFileSync(path.join(here, 'fixtures', f), 'utf8'));
  if (f.includes('suspended')) b.document.run_id = `5${b.document.run_id.slice(1)}`;
  add(b);
}
const replayFixture = JSON.parse(fs.readFileSync(path.join(here, 'fixtures', 'replay-fixture.json'), 'utf8'));
add(structuredClone(replayFixture.bundle));
add(everythingRun());
const susp = everythingRun({ answered: false });
susp.document.run_id = '00000000-0000-4000-8000-000000000002';
susp.document.pending = [{ question: 'review', step: 'review', prompt: 'Publish v100 to the blog?' }];
add(susp);
const schemaQ = everythingRun({ answered: false });
schemaQ.document.run_id = '00000000-0000-4000-8000-000000000003';
schemaQ.document.pending = [{
  question: '1/review', step: 'review', prompt: 'Rate the draft',
  schema: { title: 'Rating', type: 'object', required: ['approve', 'score'], properties: { approve: { type: 'boolean' }, score: { type: 'integer', minimum: 0, maximum: 10 }, channel: { enum: ['blog', 'newsletter'] }, note: { type: ['string', 'null'] }, tags: { type: 'array', items: { type: 'string' } } } },
}];
add(schemaQ);
add(bigRun(10_000));
const liveTemplate = everythingRun();
const LIVE_ID = '11111111-0000-4000-8000-00000000a11e';
const t0 = Date.parse('2026-12-01T00:00:00Z');
for (let i = 0; i < 1200; i++) {
  const st = ['completed', 'completed', 'completed', 'failed', 'running', 'cancelled'][i % 6];
  const id = `f${String(i).padStart(7, '0')}-0000-4000-8000-000000000000`;
  runs.set(id, {
    document: {
      format: 'orchflow-checkpoint', version: 2, run_id: id, flow: i % 3 ? 'nightly_report' : 'ingest', fingerprint: '00000000000000ff', shape: 'a => b',
      input: i, status: st, pending: [], output: st === 'completed' ? i : null, error: st === 'failed' ? 'step b failed for good: timeout' : null,
      created_at: iso(t0 + i * 60_000), updated_at: iso(t0 + i * 60_000 + 1234),
    },
    journal: [],
    graph: null,
  });
}

function liveRun() {
  const now = Date.now();
  const shift = now - Date.parse(liveTemplate.document.created_at);
  const sh = (s) => iso(Date.parse(s) + shift);
  const journal = liveTemplate.journal.map((e) => ({ ...e, traces: e.traces?.map((t) => ({ ...t, started_at: sh(t.started_at), ended_at: sh(t.ended_at) })) }));
  return {
    document: { ...liveTemplate.document, run_id: LIVE_ID, flow: 'everything_live', status: 'running', output: null, created_at: iso(now), updated_at: iso(now) },
    journal: [],
    pendingJournal: journal,
    graph: liveTemplate.graph,
  };
}
runs.set(LIVE_ID, liveRun());

const json = (res, code, body) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};
const docsSorted = () => [...runs.values()].map((r) => r.document).sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.run_id < b.run_id ? 1 : -1));

function list(q) {
  const since = q.get('since') ? Date.parse(q.get('since')) : null;
  const text = q.get('q') || '';
  let docs = docsSorted().filter((d) => (!q.get('flow') || d.flow === q.get('flow')) && (!since || Date.parse(d.created_at) >= since) && (!text || d.run_id.startsWith(text) || d.flow.includes(text)));
  const counts = { queued: 0, running: 0, suspended: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const d of docs) counts[d.status]++;
  if (q.get('status')) docs = docs.filter((d) => d.status === q.get('status'));
  const after = q.get('after');
  if (after) {
    const i = docs.findIndex((d) => `${d.created_at}|${d.run_id}` === after);
    docs = i >= 0 ? docs.slice(i + 1) : [];
  }
  const limit = Math.min(500, Number(q.get('limit') || 50));
  const page = docs.slice(0, limit);
  const next = docs.length > limit ? `${page[page.length - 1].created_at}|${page[page.length - 1].run_id}` : null;
  return { runs: page, next, unreadable: q.get('flow') === 'broken' ? ['/var/runs/abc.json is not a valid checkpoint: EOF at line 1'] : [], counts };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/' || p.startsWith('/assets/')) {
    const f = p === '/' ? 'index.html' : p.slice('/assets/'.length);
    const file = path.join(assets, path.basename(f));
    if (!fs.existsSync(file)) return json(res, 404, { error: 'no such asset' });
    const type = f.endsWith('.js') ? 'text/javascript' : f.endsWith('.css') ? 'text/css' : 'text/html';
    res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8`, 'Cache-Control': 'no-cache' });
    return res.end(fs.readFileSync(file));
  }
  if (p === '/api/info') return json(res, 200, { store: 'mock:fixtures', live: true, bundle: false, version: '0.1.0', flows: [{ name: 'fixture', fingerprint: replayFixture.reports.added.fingerprint }] });
  if (p === '/api/runs') return json(res, 200, list(url.searchParams));
  if (p === '/api/questions') {
    const out = [];
    for (const d of docsSorted()) if (d.status === 'suspended') for (const q of d.pending) out.push({ run_id: d.run_id, flow: d.flow, pending: q, since: d.updated_at });
    return json(res, 200, out);
  }
  const m = /^\/api\/runs\/([^/]+)(?:\/(journal|events|answer|resume|cancel|export|replay|fork|fork\/preview))?$/.exec(p);
  if (!m) return json(res, 404, { error: `no route ${p}` });
  const id = decodeURIComponent(m[1]);
  if (id === LIVE_ID && m[2] === undefined && !runs.get(LIVE_ID).journal.length) runs.set(LIVE_ID, liveRun());
  const run = runs.get(id);
  if (!run) return json(res, 404, { error: `no run ${id}` });
  const body = req.method === 'POST' ? await new Promise((ok) => { let s = ''; req.on('data', (c) => { s += c; }); req.on('end', () => ok(s)); }) : '';
  switch (m[2]) {
    case undefined:
      return json(res, 200, { document: run.document, graph: run.graph });
    case 'journal': {
      const after = Number(url.searchParams.get('after') || 0);
      return json(res, 200, run.journal.filter((e) => e.seq > after));
    }
    case 'export':
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Disposition': `attachment; filename="${id}.json"` });
      return res.end(JSON.stringify({ format: 'orchflow-bundle', version: 1, exported_at: iso(Date.now()), ...run }));
    case 'events': {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      let after = Number(req.headers['last-event-id'] || url.searchParams.get('after') || 0);
      const send = () => {
        for (const e of run.journal) if (e.seq > after) {
          res.write(`id: ${e.seq}\nevent: entry\ndata: ${JSON.stringify(e)}\n\n`);
          after = e.seq;
        }
      };
      send();
      res.write(`event: document\ndata: ${JSON.stringify(run.document)}\n\n`);
      const finished = () => ['completed', 'failed', 'cancelled'].includes(run.document.status);
      if (finished() && !run.pendingJournal?.length) {
        res.write('event: end\ndata: {}\n\n');
        return res.end();
      }
      const timer = setInterval(() => {
        if (run.pendingJournal?.length) {
          const e = run.pendingJournal.shift();
          run.journal.push(e);
          send();
          if (!run.pendingJournal.length) {
            run.document = { ...run.document, status: 'completed', output: 'v100 -> yes', updated_at: iso(Date.now()) };
            res.write(`event: document\ndata: ${JSON.stringify(run.document)}\n\n`);
          }
        }
        if (finished()) {
          res.write('event: end\ndata: {}\n\n');
          clearInterval(timer);
          res.end();
        }
      }, 250);
      req.on('close', () => clearInterval(timer));
      return undefined;
    }
    case 'answer': {
      if (!(req.headers['content-type'] || '').startsWith('application/json')) return json(res, 400, { error: 'POST needs Content-Type: application/json' });
      let b;
      try {
        b = JSON.parse(body);
      } catch {
        return json(res, 400, { error: 'the body is not JSON' });
      }
      if (run.document.status !== 'suspended') return json(res, 409, { error: `run ${id} is ${run.document.status}, not suspended` });
      const q = run.document.pending.find((x) => x.question === b.question || x.step === b.question) ?? (b.question == null ? run.document.pending[0] : null);
      if (!q) return json(res, 400, { error: `run ${id} has no pending question ${JSON.stringify(b.question)}` });
      if (q.schema) {
        try {
          JSON.parse(b.text);
        } catch (e) {
          return json(res, 400, { error: `the answer does not fit the question's type: ${e.message}` });
        }
      }
      if (b.text === 'bad') return json(res, 400, { error: 'the answer does not fit the question\'s type: expected a boolean' });
      run.document = { ...run.document, status: 'queued', pending: [], updated_at: iso(Date.now()) };
      return json(res, 200, { status: 'queued' });
    }
    case 'resume':
      if (run.document.status === 'completed') return json(res, 409, { error: `run ${id} is completed: nothing to resume` });
      run.document = { ...run.document, status: 'queued', updated_at: iso(Date.now()) };
      return json(res, 200, { status: 'queued' });
    case 'cancel':
      run.document = { ...run.document, status: 'cancelled', updated_at: iso(Date.now()) };
      return json(res, 200, { status: 'cancelled' });
    case 'replay':
      if (run.document.flow !== 'fixture') return json(res, 200, { run_id: id, flow: run.document.flow, status: run.document.status, recorded_fingerprint: run.document.fingerprint, fingerprint: '', outcome: 'unreplayable', reason: `this build has no flow \`${run.document.flow}\``, reused: 0, reexecuted: 0, continues_at: [], resume: 'undeclared' });
      return json(res, 200, { ...replayFixture.reports.added, run_id: id });
    case 'fork/preview':
    case 'fork': {
      let b;
      try {
        b = JSON.parse(body);
      } catch {
        return json(res, 400, { error: 'the body is not JSON' });
      }
      if (run.document.flow !== 'fixture') return json(res, 400, { error: `this build has no flow \`${run.document.flow}\`` });
      const known = replayFixture.calls.find((c) => c.spec === b.from);
      if (!known || known.error) return json(res, 400, { error: known?.error ?? `run ${id}: the run never called \`${b.from}\`` });
      if (b.input !== undefined && typeof b.input !== typeof known.input) return json(res, 400, { error: `run ${id}: the input given does not fit the input type of \`${b.from.split('@')[0]}\`` });
      if (m[2] === 'fork/preview') {
        const pv = replayFixture.previews[b.from] ?? { run_id: id, at: known, steps: [{ call: known, reuse: 'rerun', repeats_side_effects: true }] };
        return json(res, 200, { ...pv, at: { ...pv.at, input: b.input ?? pv.at.input } });
      }
      const nid = `${Math.random().toString(16).slice(2, 10)}-0000-4000-8000-${String(Date.now()).slice(-12)}`;
      const [step, n] = b.from.split('@');
      const copy = structuredClone(replayFixture.bundle);
      copy.document = { ...copy.document, run_id: nid, created_at: iso(Date.now()), updated_at: iso(Date.now()), lineage: { forked_from: { run_id: id, at: { step, occurrence: Number(n) }, path: known.path, ...(b.input !== undefined ? { input: b.input } : {}), fingerprint: run.document.fingerprint } } };
      add(copy);
      const l = run.document.lineage ?? {};
      run.document = { ...run.document, lineage: { ...l, forks: [...(l.forks ?? []), nid] } };
      return json(res, 201, { run_id: nid });
    }
    default:
      return json(res, 404, { error: 'no route' });
  }
});
server.listen(port, '127.0.0.1', () => console.log(`mock orchflow serve on http://127.0.0.1:${port}/`));
