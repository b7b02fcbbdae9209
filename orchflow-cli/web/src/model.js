// The run as data: the flow's graph expanded into one tree of nodes (nested flows inline), the
// recording (every attempt and journal entry as one time-ordered list of events), the reducer
// that folds a prefix of that list into "what had happened by then", and what the graph shows
// for each node at that point.
//
// Invariants:
// * A node's key is its id in the top-level graph; a node of a nested flow is keyed by the
//   key of the step that runs the flow, ">", and its id in the nested graph ("8>0").
// * Events are sorted by time; at equal times an attempt's end comes before a journal entry,
//   which comes before a status change, which comes before an attempt's start (one clock read
//   ends a step and starts the next), and an attempt always starts before it ends. An attempt
//   that took no time (a call a fork reused) starts and ends between the attempts ending and
//   the journal entries at its time, so that the entry recording it comes after it.
// * The reducer only ever reads events in list order: the state at position k is
//   `events.slice(0, k).reduce(applyEvent, initialState())`. Live updates append (or insert)
//   events and go through the same `applyEvent`.
// * Nothing here touches the DOM; it runs in node for the unit tests.

import { parseTime } from './time.js';

/** Attempt outcomes that count as a failed attempt (a later success is then a retry). */
export const FAILED_OUTCOMES = new Set(['failed', 'timed_out', 'panicked', 'cancelled']);
/**
 * Attempt outcomes after which the call is done: the step returned (`succeeded`), or a fork
 * took the result of the same call of the run it was forked from (`reused`: the step did not
 * run, its attempt lasts no time and carries the recorded input and output).
 */
export const DONE_OUTCOMES = new Set(['succeeded', 'reused']);
/** Every attempt outcome, in the order the viewer lists them (legend, filters). */
export const OUTCOMES = ['succeeded', 'reused', 'failed', 'timed_out', 'panicked', 'suspended', 'cancelled'];
/** Run statuses after which nothing more happens (unless resumed). */
export const FINISHED = new Set(['completed', 'failed', 'cancelled']);
/** Node states, in the order of precedence used when one node has many instances. */
export const STATES = ['running', 'failed', 'suspended', 'cancelled', 'retried', 'succeeded', 'reused', 'pending'];
/** Event kinds, as the event log filters them. */
export const EVENT_KINDS = ['start', 'end', 'entry', 'answer', 'status'];
export const EVENT_KIND_LABELS = {
  start: 'attempt started',
  end: 'attempt ended',
  entry: 'checkpoint',
  answer: 'answer',
  status: 'run status',
};

const CONTAINER_KINDS = new Set(['group', 'branch', 'if', 'arm', 'loop', 'map']);

// ---------------------------------------------------------------------------------------------
// The graph, expanded

/**
 * The flow's graph as one tree: every node of the top-level graph and, under each step that
 * runs a nested flow, that flow's nodes (keys prefixed by the step's key and ">").
 * A null or malformed graph gives an empty model (the timeline still works from traces).
 */
export function buildModel(graph) {
  const nodes = [];
  const byKey = new Map();
  const edges = [];
  const model = { name: graph?.name ?? null, fingerprint: graph?.fingerprint ?? null, nodes, byKey, edges, roots: [], empty: true };
  if (!graph || !Array.isArray(graph.nodes)) return model;
  const flows = new Map();
  for (const f of Array.isArray(graph.flows) ? graph.flows : []) flows.set(String(f.fingerprint), f);

  const expand = (g, prefix, outerKey, depth, stack) => {
    for (const n of g.nodes || []) {
      if (!n || typeof n.id !== 'string') continue;
      const key = prefix + n.id;
      const parentKey = n.parent != null ? prefix + n.parent : outerKey;
      const rec = {
        key,
        id: n.id,
        kind: n.kind,
        label: n.label ?? n.id,
        name: n.kind === 'step' ? (n.name ?? n.label) : null,
        node: n,
        parentKey,
        outerKey,
        depth,
        children: [],
        nested: null,
        order: nodes.length,
      };
      nodes.push(rec);
      byKey.set(key, rec);
      const parent = parentKey != null ? byKey.get(parentKey) : null;
      if (parent) parent.children.push(key);
      else rec.parentKey = null;
      if (n.kind === 'step' && n.flow && n.flow.fingerprint != null) {
        const fp = String(n.flow.fingerprint);
        const sub = flows.get(fp);
        if (sub && depth < 8 && !stack.includes(fp)) {
          rec.nested = { name: sub.name ?? n.flow.name, fingerprint: fp };
          expand(sub, key + '>', key, depth + 1, [...stack, fp]);
        }
      }
    }
    for (const e of g.edges || []) {
      if (!e) continue;
      edges.push({ from: prefix + e.from, to: prefix + e.to, kind: e.kind, outerKey });
    }
  };
  expand(graph, '', null, 0, [String(graph.fingerprint)]);
  model.roots = nodes.filter((n) => n.parentKey == null).map((n) => n.key);
  model.empty = nodes.length === 0;

  // Derived structure, computed once.
  const next = new Map();
  for (const e of edges) {
    if (e.kind !== 'sequence') continue;
    if (!next.has(e.from)) next.set(e.from, []);
    next.get(e.from).push(e.to);
  }
  model.next = next;
  for (const n of nodes) {
    n.isContainer = CONTAINER_KINDS.has(n.kind) || n.nested != null;
    n.steps = stepsUnder(model, n.key);
  }
  // The loop or map a step belongs to directly (not through an inner loop or map).
  for (const n of nodes) {
    let p = n.parentKey != null ? byKey.get(n.parentKey) : null;
    while (p && p.kind !== 'loop' && p.kind !== 'map') p = p.parentKey != null ? byKey.get(p.parentKey) : null;
    n.ownerLoop = p ? p.key : null;
  }
  for (const n of nodes) {
    if (n.kind === 'if' || n.kind === 'loop' || n.kind === 'map') n.after = stepsAfter(model, n.key);
  }
  return model;
}

function stepsUnder(model, key) {
  const out = [];
  const walk = (k) => {
    const n = model.byKey.get(k);
    if (!n) return;
    if (n.kind === 'step') out.push(k);
    for (const c of n.children) walk(c);
  };
  walk(key);
  return out;
}

/** The steps that run after node `key` is done: its pipeline's later items, then its containers'. */
function stepsAfter(model, key) {
  const out = [];
  const seen = new Set();
  let k = key;
  while (k != null && !seen.has(k)) {
    seen.add(k);
    let succ = model.next.get(k) || [];
    const chain = new Set();
    while (succ.length) {
      const s = succ[0];
      if (chain.has(s)) break;
      chain.add(s);
      out.push(...stepsUnder(model, s));
      succ = model.next.get(s) || [];
    }
    const n = model.byKey.get(k);
    const p = n && n.parentKey != null ? model.byKey.get(n.parentKey) : null;
    if (!p) break;
    k = p.kind === 'branch' || p.kind === 'arm' ? p.parentKey : p.key;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The recording

function recordKind(record) {
  if (typeof record === 'string') return record; // "stopped"
  if (record && typeof record === 'object') return Object.keys(record)[0] || 'unknown';
  return 'unknown';
}

/** A short description of a journal entry's record. */
export function describeRecord(record) {
  const kind = recordKind(record);
  const body = record && typeof record === 'object' ? record[kind] : null;
  switch (kind) {
    case 'point': {
      const name = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body)[0] : null;
      return name ? `point ${name}` : 'point';
    }
    case 'inner':
      return `inner ${body?.name ?? ''}${Array.isArray(body?.path) && body.path.length ? ` [${body.path.join(', ')}]` : ''}`;
    case 'branch':
      return `branch ${body?.index ?? '?'} of ${body?.group ?? '?'}`;
    case 'answer':
      return `answer to ${body?.question ?? '?'}: ${JSON.stringify(body?.text ?? '')}`;
    case 'stopped':
      return 'stopped';
    default:
      return kind;
  }
}

/**
 * Every attempt and journal entry of one run, as traces and one sorted list of events.
 * Feed it a document and journal entries in any number of calls (the initial load and the
 * live stream use the same calls); entries already seen (by seq) are ignored.
 */
export class Recording {
  constructor(model) {
    this.model = model || buildModel(null);
    /** Every attempt: the StepTrace fields plus start/end (ms), key, seq, startIdx/endIdx. */
    this.traces = [];
    /** Every event, sorted (see the module invariants). */
    this.events = [];
    this.lastSeq = 0;
    this.doc = null;
    this.lastEntryT = NaN;
    this.createdT = NaN;
    /** Keys of nodes that are not in the graph (traces of an unknown graph): key → label. */
    this.unplaced = new Map();
    /** The first index changed since the last `takeDirty()`; Infinity when none. */
    this.dirtyFrom = Infinity;
    this.version = 0;
    this._pending = [];
  }

  /** The run's document (initial or from the live stream); a status change becomes an event. */
  setDocument(doc) {
    if (!doc || typeof doc !== 'object') return;
    const prev = this.doc;
    this.doc = doc;
    const created = parseTime(doc.created_at);
    if (!prev) {
      this.createdT = created;
      if (Number.isFinite(this.createdT)) {
        // A submitted run waits in the queue until a worker starts it; a run started in place
        // runs from its creation.
        const initial = doc.status === 'queued' ? 'queued' : 'running';
        this._push({ t: created, rank: 0, kind: 'status', status: 'created', initial, text: 'created' });
      }
    }
    if (!prev || prev.status !== doc.status) {
      let t = parseTime(doc.updated_at);
      if (!Number.isFinite(t)) t = this.lastT();
      this._push({ t, rank: 3, kind: 'status', status: doc.status, text: `${doc.status}${doc.error ? `: ${doc.error}` : ''}` });
    }
    this._flush();
  }

  /** The time of the last event, or the run's creation. */
  lastT() {
    const last = this.events[this.events.length - 1];
    if (last) return last.t;
    return Number.isFinite(this.createdT) ? this.createdT : 0;
  }

  /** Many journal entries at once (the initial load): the same as `addEntry` for each, one sort. */
  addEntries(entries) {
    let n = 0;
    for (const e of entries) if (this.addEntry(e, false)) n++;
    this._flush();
    return n;
  }

  /** One journal entry (with its traces). Returns false when it was already seen. */
  addEntry(entry, flush = true) {
    if (!entry || typeof entry.seq !== 'number' || entry.seq <= this.lastSeq) return false;
    this.lastSeq = entry.seq;
    const kind = recordKind(entry.record);
    const raw = Array.isArray(entry.traces) ? entry.traces : [];
    const base = this.traces.length;
    const fresh = raw.map((t, i) => this._trace(t, entry.seq, base + i));
    for (const tr of fresh) this.traces.push(tr);
    // Place the attempts: the top level first, then nested ones outermost first.
    const order = fresh.map((_, i) => i).sort((a, b) => {
      const pa = fresh[a].parent == null ? 0 : 1;
      const pb = fresh[b].parent == null ? 0 : 1;
      return pa - pb || fresh[a].start - fresh[b].start;
    });
    for (const i of order) {
      fresh[i].key = this._resolve(fresh[i]);
    }
    let t = Number.isFinite(this.lastEntryT) ? this.lastEntryT : this.createdT;
    for (const tr of fresh) {
      if (Number.isFinite(tr.end) && !(tr.end <= t)) t = tr.end;
      const zero = !(tr.end > tr.start);
      this._push({ t: tr.start, rank: zero ? 1.25 : 4, kind: 'start', trace: tr.idx, key: tr.key, step: tr.step, seq: entry.seq });
      this._push({ t: Number.isFinite(tr.end) ? tr.end : tr.start, rank: zero ? 1.5 : 1, kind: 'end', trace: tr.idx, key: tr.key, step: tr.step, outcome: tr.outcome, seq: entry.seq });
    }
    if (!Number.isFinite(t)) t = 0;
    this.lastEntryT = t;
    const ev = { t, rank: 2, kind: kind === 'answer' ? 'answer' : 'entry', record: kind, seq: entry.seq, text: describeRecord(entry.record), entry };
    if (kind === 'stopped') ev.stoppedSuspended = fresh.some((tr) => tr.outcome === 'suspended');
    if (kind === 'answer') ev.question = entry.record?.answer?.question ?? null;
    this._push(ev);
    if (flush) this._flush();
    return true;
  }

  _trace(t, seq, idx) {
    const start = parseTime(t.started_at);
    let end = parseTime(t.ended_at);
    if (!Number.isFinite(end) && Number.isFinite(start) && typeof t.duration === 'number') end = start + t.duration * 1000;
    return {
      idx,
      seq,
      step: String(t.step ?? '?'),
      node: t.node == null ? '' : String(t.node),
      parent: t.parent ?? null,
      attempt: t.attempt ?? 1,
      session: t.session ?? 1,
      group: t.parallel_group_id ?? null,
      item: t.item ?? null,
      input: t.input,
      output: t.output,
      error: t.error ?? null,
      outcome: t.outcome ?? (t.success ? 'succeeded' : 'failed'),
      start,
      end,
      duration: typeof t.duration === 'number' ? t.duration : (end - start) / 1000,
      raw: t,
      key: null,
      startIdx: -1,
      endIdx: -1,
    };
  }

  /** The node key of an attempt (see the module invariants on keys). */
  _resolve(tr) {
    const { byKey } = this.model;
    if (tr.parent == null) {
      if (tr.node && byKey.has(tr.node)) return tr.node;
      // Traces written before nodes were recorded: the top-level step of that name, if one.
      if (!tr.node) {
        const same = this.model.nodes.filter((n) => n.kind === 'step' && n.outerKey == null && n.name === tr.step);
        if (same.length === 1) return same[0].key;
      }
      return this._unplaced(tr);
    }
    // A step of a nested flow: the step running that flow has the trace's parent as name.
    const candidates = this.model.nodes.filter((n) => n.nested && n.name === tr.parent && byKey.has(`${n.key}>${tr.node}`));
    if (candidates.length === 0) return this._unplaced(tr);
    if (candidates.length === 1) return `${candidates[0].key}>${tr.node}`;
    // The same nested flow run by several steps: the one whose attempt contains this one.
    for (const c of candidates) {
      for (let i = this.traces.length - 1; i >= 0; i--) {
        const o = this.traces[i];
        if (o !== tr && o.key === c.key && o.start <= tr.start && tr.end <= o.end) return `${c.key}>${tr.node}`;
      }
    }
    // Not known yet (live): the first that has not finished an attempt by then.
    for (const c of candidates) {
      const done = this.traces.some((o) => o.key === c.key && DONE_OUTCOMES.has(o.outcome) && o.end <= tr.start);
      if (!done) return `${c.key}>${tr.node}`;
    }
    return `${candidates[candidates.length - 1].key}>${tr.node}`;
  }

  _unplaced(tr) {
    const key = `?${tr.parent != null ? `${tr.parent}>` : ''}${tr.node || tr.step}`;
    if (!this.unplaced.has(key)) this.unplaced.set(key, tr.step);
    return key;
  }

  _push(ev) {
    if (!Number.isFinite(ev.t)) ev.t = this.lastT();
    ev.fresh = true;
    this._pending.push(ev);
  }

  /** Merges the pending events into the sorted list, noting the first index that changed. */
  _flush() {
    if (!this._pending.length) return;
    const ev = this.events;
    const add = this._pending;
    this._pending = [];
    add.sort(compareEvents);
    const first = add[0];
    // Fast path: everything new sorts after what we had.
    const last = ev[ev.length - 1];
    let from;
    if (!last || compareEvents(last, first) <= 0) {
      from = ev.length;
      for (const e of add) ev.push(e);
    } else {
      // Binary search for the first event that sorts after the first new one.
      let lo = 0;
      let hi = ev.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareEvents(ev[mid], first) <= 0) lo = mid + 1;
        else hi = mid;
      }
      from = lo;
      const tail = ev.splice(from).concat(add);
      tail.sort(compareEvents);
      for (const e of tail) ev.push(e);
    }
    for (let i = from; i < ev.length; i++) {
      const e = ev[i];
      e.i = i;
      e.fresh = false;
      if (e.kind === 'start') this.traces[e.trace].startIdx = i;
      else if (e.kind === 'end') this.traces[e.trace].endIdx = i;
    }
    if (from < this.dirtyFrom) this.dirtyFrom = from;
    this.version++;
  }

  /** The first event index that changed since the last call (Infinity when none), and resets it. */
  takeDirty() {
    const d = this.dirtyFrom;
    this.dirtyFrom = Infinity;
    return d;
  }

  /** The time span of the run: first and last event times (ms). */
  span() {
    const n = this.events.length;
    if (!n) return [0, 0];
    return [this.events[0].t, this.events[n - 1].t];
  }
}

function compareEvents(a, b) {
  return a.t - b.t || a.rank - b.rank;
}

// ---------------------------------------------------------------------------------------------
// The reducer

/** The state before any event. */
export function initialState() {
  return { k: 0, t: NaN, runStatus: 'queued', sessions: 0, nodes: new Map(), answers: 0 };
}

function inst(state, key, item) {
  let n = state.nodes.get(key);
  if (!n) {
    n = { attempts: 0, insts: new Map() };
    state.nodes.set(key, n);
  }
  const ik = item == null ? '' : item;
  let i = n.insts.get(ik);
  if (!i) {
    i = { running: 0, last: null, hadFailure: false, ran: false, entries: 0, attempts: 0 };
    n.insts.set(ik, i);
  }
  return [n, i];
}

/**
 * Folds one event into the state (in place) and returns it. `traces` is the recording's
 * trace list (an event names its attempt by index).
 */
export function applyEvent(state, ev, traces) {
  state.k++;
  state.t = ev.t;
  switch (ev.kind) {
    case 'start': {
      const tr = traces[ev.trace];
      const [n, i] = inst(state, ev.key, tr?.item);
      n.attempts++;
      i.attempts++;
      // A new entry into the step (a loop's next iteration) unless this retries a failure.
      if (i.last === null || DONE_OUTCOMES.has(i.last)) i.entries++;
      i.running++;
      if (tr && tr.session > state.sessions) state.sessions = tr.session;
      state.runStatus = 'running';
      break;
    }
    case 'end': {
      const tr = traces[ev.trace];
      const [, i] = inst(state, ev.key, tr?.item);
      if (i.running > 0) i.running--;
      i.last = ev.outcome;
      if (FAILED_OUTCOMES.has(ev.outcome)) i.hadFailure = true;
      if (ev.outcome !== 'reused') i.ran = true;
      break;
    }
    case 'entry':
      if (ev.record === 'stopped') state.runStatus = ev.stoppedSuspended ? 'suspended' : 'failed';
      break;
    case 'answer':
      state.answers++;
      state.runStatus = 'queued';
      break;
    case 'status':
      state.runStatus = ev.status === 'created' ? (ev.initial ?? 'running') : ev.status;
      break;
    default:
      break;
  }
  return state;
}

/** The state after the first `k` events. */
export function stateAt(recording, k) {
  const s = initialState();
  const n = Math.min(k, recording.events.length);
  for (let i = 0; i < n; i++) applyEvent(s, recording.events[i], recording.traces);
  return s;
}

// ---------------------------------------------------------------------------------------------
// What each node shows

function instState(i) {
  if (i.running > 0) return 'running';
  switch (i.last) {
    case null:
      return 'pending';
    case 'succeeded':
      return i.hadFailure ? 'retried' : 'succeeded';
    case 'reused':
      // Every attempt so far was taken from the recorded run; once one ran, the step ran.
      return i.ran ? (i.hadFailure ? 'retried' : 'succeeded') : 'reused';
    case 'suspended':
      return 'suspended';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'failed';
  }
}

function strongest(states) {
  let best = 'pending';
  let bi = STATES.indexOf(best);
  for (const s of states) {
    const i = STATES.indexOf(s);
    if (i >= 0 && i < bi) {
      best = s;
      bi = i;
    }
  }
  return best;
}

/** A step's own state from its attempts (every instance: map items). */
export function stepState(state, key) {
  const n = state.nodes.get(key);
  if (!n || n.insts.size === 0) return 'pending';
  return strongest([...n.insts.values()].map(instState));
}

/**
 * What every node of the model shows at a state: `{state, iterations?, items?, itemsDone?,
 * itemsFailed?, taken?, attempts}` by key (keys of unplaced attempts included).
 *
 * * A step: its attempts decide (see `stepState`); a step running a nested flow that has no
 *   attempt of its own yet takes its nested flow's state.
 * * A step whose attempts are all `reused` (a fork took the recorded results) is `reused`;
 *   once one of its attempts ran (a later loop iteration, another map item) it is what that
 *   attempt makes it.
 * * A container: `pending` until something in it started; then the strongest of its children
 *   (running, failed, suspended, cancelled, retried, succeeded, reused), except that a container with
 *   some children done and some still pending is `running`. Arms that were not taken do not
 *   count; an `if` decided with no arm taken is `succeeded`.
 * * A loop: `iterations` = how many times its body was entered (the most, over its steps and
 *   map items, of the attempts that did not retry a failure).
 * * A map: `items` = distinct items started, `itemsDone` = of those, items whose every step
 *   succeeded (or was reused) last, `itemsFailed` = items whose latest attempt somewhere failed.
 * * An arm: `taken` = true once a step in it started; false once the `if` is decided without
 *   it (another arm was taken, a step after the `if` started, or the run completed); absent
 *   (undefined) before.
 */
export function deriveNodes(model, state) {
  const out = new Map();
  const started = (key) => {
    const n = state.nodes.get(key);
    return !!n && n.attempts > 0;
  };
  const anyStarted = (keys) => keys.some(started);
  const runDone = state.runStatus === 'completed';
  const runStopped = runDone || state.runStatus === 'failed' || state.runStatus === 'cancelled'
    || state.runStatus === 'suspended';

  // Arms first (containers look at them).
  const taken = new Map();
  for (const n of model.nodes) {
    if (n.kind !== 'if') continue;
    const arms = n.children.map((c) => model.byKey.get(c)).filter((c) => c && c.kind === 'arm');
    const tookArm = arms.filter((a) => anyStarted(a.steps));
    const reached = n.parentKey == null || anyStarted(model.byKey.get(n.parentKey)?.steps ?? []);
    const decided = tookArm.length > 0 || anyStarted(n.after || []) || (runDone && reached);
    for (const a of arms) taken.set(a.key, tookArm.includes(a) ? true : decided ? false : undefined);
    out.set(n.key, { decided });
  }

  const visit = (key) => {
    if (out.has(key) && out.get(key).state) return out.get(key);
    const n = model.byKey.get(key);
    const rec = out.get(key) || {};
    const sn = state.nodes.get(key);
    rec.attempts = sn ? sn.attempts : 0;
    if (n.kind === 'step') {
      rec.state = stepState(state, key);
      if (rec.state === 'pending' && n.children.length) rec.state = containerState(n, rec);
    } else {
      rec.state = containerState(n, rec);
    }
    if (n.kind === 'arm') rec.taken = taken.get(key);
    out.set(key, rec);
    return rec;
  };

  const containerState = (n, rec) => {
    const kids = [];
    let pending = 0;
    for (const c of n.children) {
      const cn = model.byKey.get(c);
      const r = visit(c);
      if (cn.kind === 'arm' && r.taken !== true) continue;
      if (r.state === 'pending') pending++;
      else kids.push(r.state);
    }
    if (!kids.length) {
      if (n.kind === 'if' && out.get(n.key)?.decided) return 'succeeded';
      return 'pending';
    }
    const s = strongest(kids);
    if (pending && (s === 'succeeded' || s === 'retried' || s === 'reused' || s === 'cancelled')) return 'running';
    // A loop (or map) whose steps so far all finished may still run another iteration (or
    // item): it is done only once something after it started, or the run stopped.
    if ((n.kind === 'loop' || n.kind === 'map') && (s === 'succeeded' || s === 'retried' || s === 'reused')
      && !anyStarted(n.after || []) && !runStopped) return 'running';
    return s;
  };

  for (const n of model.nodes) visit(n.key);

  // Loop iterations and map items.
  for (const n of model.nodes) {
    if (n.kind !== 'loop' && n.kind !== 'map') continue;
    const rec = out.get(n.key);
    const own = n.steps.filter((s) => model.byKey.get(s).ownerLoop === n.key);
    if (n.kind === 'loop') {
      let it = 0;
      for (const s of own) {
        const sn = state.nodes.get(s);
        if (!sn) continue;
        for (const i of sn.insts.values()) it = Math.max(it, i.entries);
      }
      rec.iterations = it;
    } else {
      const items = new Map();
      for (const s of n.steps) {
        const sn = state.nodes.get(s);
        if (!sn) continue;
        for (const [ik, i] of sn.insts) {
          if (ik === '') continue;
          const st = instState(i);
          const prev = items.get(ik);
          items.set(ik, prev ? strongest([prev, st]) : st);
        }
      }
      rec.items = items.size;
      let done = 0;
      let failed = 0;
      for (const [ik, st] of items) {
        if (st === 'failed') failed++;
        else if ((st === 'succeeded' || st === 'retried' || st === 'reused') && own.every((s) => {
          const i = state.nodes.get(s)?.insts.get(ik);
          return i && DONE_OUTCOMES.has(i.last) && i.running === 0;
        })) done++;
      }
      rec.itemsDone = done;
      rec.itemsFailed = failed;
    }
  }

  // Attempts outside the graph.
  for (const [key, sn] of state.nodes) {
    if (model.byKey.has(key)) continue;
    out.set(key, { state: stepState(state, key), attempts: sn.attempts });
  }
  return out;
}
