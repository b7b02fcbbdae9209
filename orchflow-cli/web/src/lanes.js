// The timeline's geometry, without the DOM: lanes (one per node, split into rows where its
// attempts overlap: map items, parallel runs) and the time axis (long idle gaps, such as the
// wait between two sessions of a resumed run, are collapsed into a fixed-width break).

import { FAILED_OUTCOMES } from './model.js';

/**
 * Lanes for a recording: [{key, label, rows, firstRow}], and for every trace `row` (global
 * row index) and `prev` (the index of the attempt it retries, or -1).
 */
export function buildLanes(recording, model) {
  const { traces } = recording;
  const byKey = new Map();
  for (const tr of traces) {
    if (!byKey.has(tr.key)) byKey.set(tr.key, []);
    byKey.get(tr.key).push(tr);
  }
  const order = [];
  for (const n of model.nodes) if (byKey.has(n.key)) order.push(n.key);
  for (const k of byKey.keys()) if (!model.byKey.has(k)) order.push(k);
  const lanes = [];
  const rowOf = new Int32Array(traces.length).fill(-1);
  let row = 0;
  for (const key of order) {
    const list = byKey.get(key).slice().sort((a, b) => a.start - b.start || a.idx - b.idx);
    const ends = [];
    const first = row;
    for (const tr of list) {
      let r = 0;
      while (r < ends.length && ends[r] > tr.start) r++;
      if (r === ends.length) ends.push(tr.end);
      else ends[r] = tr.end;
      rowOf[tr.idx] = first + r;
    }
    const n = model.byKey.get(key);
    const label = n ? (n.name ?? n.label) : (recording.unplaced.get(key) ?? key);
    const items = list.some((t) => t.item != null);
    lanes.push({ key, label, id: n ? key : key.replace(/^\?/, ''), depth: n ? n.depth : 0, rows: Math.max(1, ends.length), firstRow: first, items, count: list.length });
    row += Math.max(1, ends.length);
  }
  // The attempt each retry follows: same node, item and session, the previous attempt, which
  // failed (a reused attempt, taken from the recorded run by a fork, is never retried, and a
  // retry never follows one).
  const prev = new Int32Array(traces.length).fill(-1);
  const lastOf = new Map();
  const sorted = traces.slice().sort((a, b) => a.start - b.start || a.idx - b.idx);
  for (const tr of sorted) {
    const k = `${tr.key}|${tr.item ?? ''}|${tr.session}`;
    const p = lastOf.get(k);
    if (p && FAILED_OUTCOMES.has(p.outcome) && tr.outcome !== 'reused' && tr.attempt > p.attempt) prev[tr.idx] = p.idx;
    lastOf.set(k, tr);
  }
  return { lanes, rows: row, rowOf, prev };
}

/**
 * The time axis: pieces [{t0, t1, v0, v1, gap}] mapping time (ms) to a virtual coordinate
 * (ms of activity); a collapsed gap is a piece with `gap: true` a fixed share of the total
 * wide. Gaps are collapsed largest first while one is longer than 200 ms and 40% of the rest
 * (a retry's backoff in a short run stays visible; a wait between sessions does not).
 */
export function buildAxis(recording) {
  const iv = [];
  for (const tr of recording.traces) {
    if (Number.isFinite(tr.start)) iv.push([tr.start, Number.isFinite(tr.end) ? Math.max(tr.end, tr.start) : tr.start]);
  }
  for (const e of recording.events) iv.push([e.t, e.t]);
  if (!iv.length) return makeAxis([{ t0: 0, t1: 1, gap: false }]);
  iv.sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const [a, b] of iv) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  const t0 = merged[0][0];
  const t1 = merged[merged.length - 1][1];
  const gaps = [];
  for (let i = 1; i < merged.length; i++) gaps.push({ a: merged[i - 1][1], b: merged[i][0], i });
  gaps.sort((x, y) => y.b - y.a - (x.b - x.a));
  let total = Math.max(t1 - t0, 1e-3);
  const collapsed = [];
  for (const g of gaps) {
    const len = g.b - g.a;
    if (len > 0.4 * (total - len) && len > 200) {
      collapsed.push(g);
      total -= len;
    } else break;
  }
  collapsed.sort((x, y) => x.a - y.a);
  const pieces = [];
  let cur = t0;
  for (const g of collapsed) {
    pieces.push({ t0: cur, t1: g.a, gap: false });
    pieces.push({ t0: g.a, t1: g.b, gap: true });
    cur = g.b;
  }
  pieces.push({ t0: cur, t1: Math.max(t1, cur + 1e-3), gap: false });
  return makeAxis(pieces);
}

function makeAxis(pieces) {
  const active = pieces.filter((p) => !p.gap).reduce((s, p) => s + (p.t1 - p.t0), 0) || 1;
  const gapW = active * 0.04;
  let v = 0;
  for (const p of pieces) {
    p.v0 = v;
    v += p.gap ? gapW : p.t1 - p.t0;
    p.v1 = v;
  }
  const vmax = v || 1;
  const toV = (t) => {
    if (t <= pieces[0].t0) return pieces[0].v0 - (pieces[0].t0 - t);
    let lo = 0;
    let hi = pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pieces[mid].t0 <= t) lo = mid;
      else hi = mid - 1;
    }
    const p = pieces[lo];
    if (t >= p.t1) return p.v1 + (lo === pieces.length - 1 ? t - p.t1 : 0);
    const span = p.t1 - p.t0;
    return span > 0 ? p.v0 + ((t - p.t0) / span) * (p.v1 - p.v0) : p.v0;
  };
  const toT = (vv) => {
    for (const p of pieces) {
      if (vv <= p.v1) {
        const span = p.v1 - p.v0;
        return span > 0 ? p.t0 + ((vv - p.v0) / span) * (p.t1 - p.t0) : p.t0;
      }
    }
    const last = pieces[pieces.length - 1];
    return last.t1 + (vv - last.v1);
  };
  return { pieces, vmax, toV, toT, start: pieces[0].t0, end: pieces[pieces.length - 1].t1 };
}

/** A "nice" tick step (1, 2 or 5 × 10^n) at least `min`. */
export function niceStep(min) {
  if (!(min > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(min));
  for (const m of [1, 2, 5, 10]) if (m * p >= min) return m * p;
  return 10 * p;
}
