// The run page: header with operations, the scrubber, the graph, the timeline, the event log
// and the details panel; fed by the API (initial load + live SSE) or by a bundle (no calls).
//
// One event list drives everything: the scrubber's position k is "the first k events have
// happened"; the graph shows `deriveNodes(model, stateAt(k))`, the timeline draws attempts
// started before k. Live entries go through `Recording.addEntry` (the same as the initial
// load) and, when the page follows the end, the position moves to the new end.

import { h, mount, jsonBlock, badge, icon } from './dom.js';
import { api } from './api.js';
import { buildModel, Recording, initialState, applyEvent, deriveNodes, FINISHED, EVENT_KIND_LABELS, FAILED_OUTCOMES, DONE_OUTCOMES } from './model.js';
import { GraphView } from './graphview.js';
import { Timeline } from './timeline.js';
import { EventLog, eventText } from './eventlog.js';
import { questionCard } from './inbox.js';
import { fmtDuration, fmtDateTime, parseTime } from './time.js';
import { callNumbers, whyNoReplay, flowInBuild } from './replay.js';
import { lineageLine, openForkDialog, loadReplay } from './replayview.js';

export class RunView {
  /**
   * `source`: {kind: 'api', id} or {kind: 'bundle', bundle, fileName}.
   */
  constructor(root, source, info = null) {
    this.root = root;
    this.source = source;
    // A server that shows one exported bundle cannot change runs or stream them.
    this.readOnly = source.kind === 'bundle' || !!info?.bundle;
    /** `/api/info` (null until known): its `flows` turn replay and fork on. */
    this.info = info;
    /** The call of each attempt (`callNumbers`), computed on the first fork offer. */
    this.calls = null;
    this.k = 0;
    this.state = initialState();
    this.playing = false;
    this.follow = true;
    this.es = null;
    this.disposed = false;
    this.selection = null;
    this.pendingUpdate = false;
  }

  async start() {
    mount(this.root, h('div', { class: 'loading pad' }, 'loading run…'));
    mark('run:fetch');
    let doc;
    let graph;
    let journal;
    try {
      if (this.source.kind === 'bundle') {
        ({ document: doc, graph, journal } = this.source.bundle);
      } else {
        const [run, j] = await Promise.all([api.run(this.source.id), api.journal(this.source.id, 0)]);
        doc = run.document;
        graph = run.graph;
        journal = j;
      }
    } catch (e) {
      mount(this.root, h('div', { class: 'pad' }, h('p', { class: 'err', 'data-testid': 'run-error' }, e.message), h('a', { href: '#/runs' }, '← all runs')));
      return;
    }
    if (this.disposed) return;
    mark('run:fetched');
    this.model = buildModel(graph);
    this.rec = new Recording(this.model);
    this.rec.setDocument(doc);
    this.rec.addEntries(Array.isArray(journal) ? journal : []);
    this.rec.takeDirty();
    mark('run:recorded');
    this.build();
    mark('run:built');
    // `#/run/<id>?at=k` opens at a moment (a link to it); otherwise at the end, following.
    const at = this.source.at;
    this.k = Number.isInteger(at) && at >= 0 ? Math.min(at, this.rec.events.length) : this.rec.events.length;
    this.follow = this.k === this.rec.events.length;
    this.recompute();
    this.refreshAll(true);
    mark('run:drawn');
    if (this.source.kind === 'api' && !this.readOnly) this.connect();
    if (this.readOnly) this.resumeBtn.disabled = this.cancelBtn.disabled = true;
  }

  /** Learns /api/info late (an explicit route starts before it answers). */
  setInfo(info) {
    this.info = info;
    if (info?.bundle) this.setReadOnly();
    if (this.replayBtn) {
      this.refreshReplay();
      if (this.selection?.trace != null) this.select(this.selection);
    }
  }

  /** Why replay and fork are off for this run, or null. */
  noReplay() {
    return whyNoReplay(this.info, this.rec.doc.flow, { readOnly: this.readOnly });
  }

  /** The Replay button: on when the build serving has this run's flow. */
  refreshReplay() {
    const why = this.noReplay();
    this.replayBtn.disabled = !!why;
    const f = flowInBuild(this.info, this.rec.doc.flow);
    this.replayBtn.title = why ?? `replay the recording against the current build of ${f.name} (fingerprint ${f.fingerprint}) without running a step`;
  }

  /** Learns late (from /api/info) that the server shows a bundle: no operations, no stream. */
  setReadOnly() {
    if (this.readOnly) return;
    this.readOnly = true;
    if (this.es) this.es.close();
    this.es = null;
    if (this.resumeBtn) {
      this.resumeBtn.disabled = true;
      this.cancelBtn.disabled = true;
      this.liveEl.hidden = true;
      this.questionsKey = undefined;
      this.refreshHeader();
      this.refreshReplay();
    }
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.atTimer);
    this.pause();
    if (this.es) this.es.close();
    this.es = null;
    if (this.keyHandler) document.removeEventListener('keydown', this.keyHandler);
    this.timeline?.dispose();
    this.graphRo?.disconnect();
  }

  // ------------------------------------------------------------------------------ layout

  build() {
    const doc = this.rec.doc;
    this.statusEl = h('span');
    this.liveEl = h('span', { class: 'live-dot', 'data-testid': 'live', hidden: true });
    this.opResult = h('span', { class: 'op-result', 'data-testid': 'op-result', role: 'status' });
    const isApi = this.source.kind === 'api';
    const canOperate = !this.readOnly;
    this.resumeBtn = h('button', { class: 'btn', 'data-testid': 'resume', disabled: !canOperate, title: canOperate ? 'queue the run for a worker' : 'not available for a bundle', onclick: () => this.op('resume') }, 'Resume');
    this.replayBtn = h('button', { class: 'btn', 'data-testid': 'replay', onclick: () => loadReplay(this.replayEl, this.rec.doc.run_id) }, 'Replay');
    this.replayEl = h('div', { class: 'replay-panel', 'data-testid': 'replay-panel', hidden: true });
    this.lineageEl = h('div');
    this.cancelBtn = h('button', { class: 'btn danger', 'data-testid': 'cancel', disabled: !canOperate, title: canOperate ? 'cancel the run' : 'not available for a bundle', onclick: () => this.op('cancel') }, 'Cancel');
    const exportLink = isApi
      ? h('a', { class: 'btn', 'data-testid': 'export', href: api.exportUrl(doc.run_id), download: `${doc.flow}-${doc.run_id}.orchflow.json` }, 'Export')
      : h('a', { class: 'btn', 'data-testid': 'export', href: '#', onclick: (e) => { e.preventDefault(); this.downloadBundle(); } }, 'Save bundle');
    this.metaEl = h('div', { class: 'run-meta' });
    this.infoEl = h('div', { class: 'run-info' });
    const header = h('div', { class: 'run-header' },
      h('div', { class: 'run-title' },
        h('a', { href: isApi ? '#/runs' : '#/bundle', class: 'back', title: 'back' }, '←'),
        h('h1', null, doc.flow),
        this.statusEl,
        h('code', { class: 'run-id', title: 'run id', 'data-testid': 'run-id' }, doc.run_id),
        this.source.kind === 'bundle' ? h('span', { class: 'tag' }, `bundle ${this.source.fileName ?? ''}`) : null,
        this.liveEl,
        h('span', { class: 'grow' }),
        this.opResult, this.replayBtn, this.resumeBtn, this.cancelBtn, exportLink),
      this.metaEl, this.lineageEl, this.infoEl, this.replayEl);

    // Scrubber.
    this.marks = h('datalist', { id: `scrub-marks-${Math.random().toString(36).slice(2)}` });
    this.range = h('input', { type: 'range', min: '0', max: '0', value: '0', step: '1', class: 'scrub-range', 'data-testid': 'scrubber', 'aria-label': 'position in the run', list: this.marks.id, oninput: () => this.seek(Number(this.range.value), { user: true }) });
    this.posEl = h('span', { class: 'scrub-pos', 'data-testid': 'scrub-position' });
    this.speedSel = h('select', { class: 'speed', 'data-testid': 'speed', title: 'playback speed', 'aria-label': 'playback speed' },
      h('option', { value: 'fit' }, 'whole run in 8 s'),
      h('option', { value: '1' }, 'real time'),
      h('option', { value: '0.1' }, '10× slower'),
      h('option', { value: '10' }, '10× faster'));
    this.timeEl = h('span', { class: 'scrub-time muted' });
    this.playBtn = h('button', { class: 'btn icon', 'data-testid': 'play', title: 'play (space)', onclick: () => this.play() }, icon('play'));
    this.pauseBtn = h('button', { class: 'btn icon', 'data-testid': 'pause', title: 'pause (space)', onclick: () => this.pause(), hidden: true }, icon('pause'));
    const scrub = h('div', { class: 'scrubber' },
      h('button', { class: 'btn icon', 'data-testid': 'to-start', title: 'to the start (Home)', onclick: () => this.seek(0, { user: true }) }, icon('first')),
      h('button', { class: 'btn icon', 'data-testid': 'step-back', title: 'one event back (←)', onclick: () => this.seek(this.k - 1, { user: true }) }, icon('back')),
      this.playBtn, this.pauseBtn,
      h('button', { class: 'btn icon', 'data-testid': 'step', title: 'one event forward (→)', onclick: () => this.seek(this.k + 1, { user: true }) }, icon('step')),
      h('button', { class: 'btn icon', 'data-testid': 'to-end', title: 'to the end (End)', onclick: () => this.seek(this.rec.events.length, { user: true }) }, icon('last')),
      this.range, this.marks, this.posEl, this.speedSel, this.timeEl);

    // Panels.
    const graphBox = h('div', { class: 'panel-body graph-box', 'data-testid': 'graph' });
    const tlBox = h('div', { class: 'panel-body tl-box' });
    const logBox = h('div', { class: 'panel-body log-box' });
    this.detailsEl = h('div', { class: 'panel-body details', 'data-testid': 'details' }, h('p', { class: 'muted' }, 'Click a node, a bar or an event.'));
    const tlTools = h('span', { class: 'panel-tools' },
      h('button', { class: 'btn small', title: 'zoom in (ctrl+wheel)', onclick: () => this.timeline.zoom(0.5) }, '+'),
      h('button', { class: 'btn small', title: 'zoom out', onclick: () => this.timeline.zoom(2) }, '−'),
      h('button', { class: 'btn small', title: 'fit (double click)', onclick: () => this.timeline.zoom(0) }, 'fit'));
    const legend = h('span', { class: 'legend' }, ['succeeded', 'reused', 'failed', 'timed_out', 'suspended', 'cancelled', 'running'].map((o) => h('span', {
      class: `lg o-${o}`,
      'data-testid': `legend-${o}`,
      title: o === 'reused' ? 'a call a fork took from the recorded run (the step did not run; drawn as a diamond)' : null,
    }, o.replace('_', ' '))));
    const main = h('div', { class: `run-main${this.model.empty ? ' no-graph' : ''}` },
      h('section', { class: 'panel graph-panel' }, h('header', null, h('h2', null, 'Graph'), h('span', { class: 'muted small' }, this.model.name ?? ''), h('span', { class: 'grow' }),
        h('button', { class: 'btn small', 'data-testid': 'graph-fit', title: 'fit the panel or show at full size', onclick: (e) => { e.currentTarget.textContent = this.graph.toggleFit() ? '100%' : 'fit'; } }, '100%')), graphBox),
      h('div', { class: 'run-right' },
        h('section', { class: 'panel tl-panel' }, h('header', null, h('h2', null, 'Timeline'), legend, h('span', { class: 'grow' }), tlTools), tlBox),
        h('div', { class: 'run-bottom' },
          h('section', { class: 'panel log-panel' }, h('header', null, h('h2', null, 'Events')), logBox),
          h('section', { class: 'panel details-panel' }, h('header', null, h('h2', null, 'Details')), this.detailsEl))));
    mount(this.root, h('div', { class: 'run-page', 'data-testid': 'run-page', 'data-run-id': doc.run_id }, header, scrub, main));
    this.refreshReplay();

    this.graph = new GraphView(graphBox, this.model, { onSelect: (sel) => this.select(sel) });
    this.graphRo = new ResizeObserver(() => this.graph.fit());
    this.graphRo.observe(graphBox);
    this.timeline = new Timeline(tlBox, { onSelect: (sel) => this.select(sel) });
    this.log = new EventLog(logBox, { onPick: (i, ev) => { this.seek(i + 1, { user: true }); this.select(ev.trace != null ? { trace: ev.trace } : { event: i }); } });

    this.keyHandler = (e) => this.onKey(e);
    document.addEventListener('keydown', this.keyHandler);
  }

  onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const tag = t && t.tagName;
    const typing = tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || (t && t.isContentEditable);
    if (typing && !(tag === 'INPUT' && t.type === 'range')) return;
    if (tag === 'INPUT' && t.type === 'range' && e.key !== ' ') return; // the range handles its own arrows
    const n = this.rec.events.length;
    switch (e.key) {
      case ' ':
        if (tag === 'BUTTON' || tag === 'A') return;
        e.preventDefault();
        if (this.playing) this.pause();
        else this.play();
        break;
      case 'ArrowRight':
        e.preventDefault();
        this.seek(this.k + (e.shiftKey ? 10 : 1), { user: true });
        break;
      case 'ArrowLeft':
        e.preventDefault();
        this.seek(this.k - (e.shiftKey ? 10 : 1), { user: true });
        break;
      case 'Home':
        e.preventDefault();
        this.seek(0, { user: true });
        break;
      case 'End':
        e.preventDefault();
        this.seek(n, { user: true });
        break;
      default:
    }
  }

  // ------------------------------------------------------------------------------ position

  /** Recomputes the state at this.k from the start. */
  recompute() {
    const s = initialState();
    const { events, traces } = this.rec;
    const k = Math.min(this.k, events.length);
    for (let i = 0; i < k; i++) applyEvent(s, events[i], traces);
    this.state = s;
  }

  seek(k, { user = false } = {}) {
    const n = this.rec.events.length;
    k = Math.max(0, Math.min(n, Math.round(k)));
    if (user && this.playing && k === n) this.pause();
    if (k >= this.state.k) {
      const { events, traces } = this.rec;
      for (let i = this.state.k; i < k; i++) applyEvent(this.state, events[i], traces);
    } else {
      this.k = k;
      this.recompute();
    }
    this.k = k;
    this.follow = k === n;
    this.refreshPosition(user);
    if (user) this.rememberPosition();
  }

  /** Keeps the position in the address (`?at=k`) so that a link opens this moment. */
  rememberPosition() {
    if (this.source.kind !== 'api') return;
    clearTimeout(this.atTimer);
    this.atTimer = setTimeout(() => {
      if (this.disposed) return;
      const base = `#/run/${encodeURIComponent(this.source.id)}`;
      const want = this.follow ? base : `${base}?at=${this.k}`;
      if (location.hash !== want) history.replaceState(null, '', want);
    }, 250);
  }

  play() {
    if (this.playing) return;
    if (this.k >= this.rec.events.length) this.seek(0);
    this.playing = true;
    this.playBtn.hidden = true;
    this.pauseBtn.hidden = false;
    let last = performance.now();
    let acc = 0;
    const axis = this.timeline.axis;
    // Real-time modes run on the timeline's axis, where long idle gaps are collapsed.
    let vt = this.k > 0 && axis ? axis.toV(this.rec.events[this.k - 1].t) : axis ? axis.toV(this.rec.events[0]?.t ?? 0) : 0;
    const tick = (now) => {
      if (!this.playing || this.disposed) return;
      const n = this.rec.events.length;
      const dt = now - last;
      last = now;
      const mode = this.speedSel.value;
      if (mode === 'fit' || !axis) {
        // The whole run plays in about 8 s, at least 20 events a second.
        acc += (dt / 1000) * Math.max(20, n / 8);
        const steps = Math.floor(acc);
        if (steps > 0) {
          acc -= steps;
          this.seek(this.k + steps);
        }
      } else {
        vt += dt * Number(mode);
        let k = this.k;
        while (k < n && axis.toV(this.rec.events[k].t) <= vt) k++;
        if (k !== this.k) this.seek(k);
      }
      if (this.k >= n) {
        this.pause();
        return;
      }
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  pause() {
    if (this.playing) this.rememberPosition();
    this.playing = false;
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = null;
    if (this.playBtn) {
      this.playBtn.hidden = false;
      this.pauseBtn.hidden = true;
    }
  }

  refreshAll(reveal = false) {
    this.refreshMarks();
    this.timeline.setData(this.rec, this.model);
    this.log.setData(this.rec);
    this.refreshHeader();
    this.refreshPosition(reveal);
  }

  refreshPosition(reveal) {
    const n = this.rec.events.length;
    const k = this.k;
    this.range.max = String(n);
    if (this.range.value !== String(k)) this.range.value = String(k);
    this.posEl.textContent = `${k}/${n}`;
    this.posEl.dataset.index = String(k);
    this.posEl.dataset.total = String(n);
    const t0 = n ? this.rec.events[0].t : 0;
    const ev = k > 0 ? this.rec.events[k - 1] : null;
    this.timeEl.textContent = ev ? `+${fmtDuration(ev.t - t0)} · ${EVENT_KIND_LABELS[ev.kind]}: ${eventText(ev, this.rec.traces)} · run ${this.state.runStatus}` : 'before the run';
    this.derived = deriveNodes(this.model, this.state);
    this.graph.update(this.derived);
    this.timeline.setPosition(k);
    this.log.setPosition(k, { reveal: reveal || this.playing });
  }

  /**
   * Ticks on the scrubber where the run stopped (failed, suspended), where sessions began and,
   * in a fork, where its own work began (the first attempt that ran after the calls it reused).
   */
  refreshMarks() {
    const at = [];
    let session = 1;
    let reused = false;
    this.forkPoint = null;
    for (const ev of this.rec.events) {
      if (ev.kind === 'entry' && ev.record === 'stopped') at.push(ev.i + 1);
      if (ev.kind === 'start') {
        const o = this.rec.traces[ev.trace].outcome;
        if (o === 'reused') reused = true;
        else if (reused && this.forkPoint == null) {
          this.forkPoint = ev.i;
          at.push(ev.i);
        }
        const s = this.rec.traces[ev.trace].session;
        if (s > session) {
          session = s;
          at.push(ev.i);
        }
      }
    }
    mount(this.marks, at.map((v) => h('option', { value: String(v) })));
    if (this.forkPoint != null) this.posEl.dataset.forkPoint = String(this.forkPoint);
    else delete this.posEl.dataset.forkPoint;
  }

  refreshHeader() {
    const doc = this.rec.doc;
    mount(this.statusEl, badge(doc.status));
    this.statusEl.dataset.testid = 'run-status';
    this.statusEl.dataset.status = doc.status;
    const created = parseTime(doc.created_at);
    const updated = parseTime(doc.updated_at);
    const sessions = this.rec.traces.reduce((m, t) => Math.max(m, t.session), 0);
    const failedAttempts = this.rec.traces.filter((t) => FAILED_OUTCOMES.has(t.outcome)).length;
    const reusedAttempts = this.rec.traces.filter((t) => t.outcome === 'reused').length;
    mount(this.metaEl,
      h('span', null, 'created ', h('b', null, fmtDateTime(created))),
      h('span', null, 'updated ', h('b', null, fmtDateTime(updated))),
      h('span', null, 'took ', h('b', null, fmtDuration(updated - created))),
      h('span', null, h('b', null, String(this.rec.traces.length)), ' attempts'),
      failedAttempts ? h('span', { class: 'warn-text', 'data-testid': 'failed-count' }, h('b', null, String(failedAttempts)), ' failed') : null,
      reusedAttempts ? h('span', { class: 'reuse-text', 'data-testid': 'reused-count', title: 'calls taken from the recorded run by the fork: the steps did not run' }, h('b', null, String(reusedAttempts)), ' reused') : null,
      h('span', null, h('b', null, String(sessions || 1)), ` session${sessions > 1 ? 's' : ''}`),
      h('span', null, h('b', null, String(this.rec.lastSeq)), ' journal entries'),
      h('span', { class: 'muted', title: doc.shape }, `fingerprint ${doc.fingerprint}`));
    const parts = [];
    parts.push(jsonBlock(doc.input, { label: 'input', open: false }));
    if (doc.output != null) parts.push(jsonBlock(doc.output, { label: 'output', open: false }));
    if (doc.error) parts.push(h('div', { class: 'run-error' }, h('b', null, 'error '), doc.error));
    if (doc.waiting) parts.push(h('div', { class: 'run-waiting' }, h('b', null, 'waiting '), doc.waiting));
    const pending = doc.status === 'suspended' ? doc.pending || [] : [];
    const key = JSON.stringify(pending.map((p) => p.question));
    if (this.readOnly) {
      for (const p of pending) parts.push(h('div', { class: 'run-question' }, h('b', null, `question ${p.question}`), ` (${p.step}): ${p.prompt}`));
    } else if (pending.length) {
      // Answer from the run page; the forms are kept while the same questions wait.
      if (this.questionsKey !== key) {
        this.questionsKey = key;
        this.questionsEl = h('div', { class: 'run-questions' }, pending.map((p) => questionCard(
          { run_id: doc.run_id, flow: doc.flow, pending: p, since: doc.updated_at },
          { compact: true, onAnswered: () => { if (!this.es) this.connect(); } })));
      }
      parts.push(this.questionsEl);
    } else {
      this.questionsKey = null;
    }
    mount(this.infoEl, parts);
    const lineageKey = JSON.stringify([doc.lineage ?? null, reusedAttempts]);
    if (this.lineageKey !== lineageKey) {
      this.lineageKey = lineageKey;
      mount(this.lineageEl, lineageLine(doc, { reused: reusedAttempts, onShowReused: () => this.log.setOutcome('reused') }));
    }
    const finished = FINISHED.has(doc.status);
    if (!this.readOnly) {
      this.cancelBtn.disabled = finished;
      this.resumeBtn.disabled = doc.status === 'completed' || doc.status === 'cancelled' || doc.status === 'running';
    }
  }

  // ------------------------------------------------------------------------------ selection

  select(sel) {
    this.selection = sel;
    if (!sel) {
      this.graph.select(null);
      this.timeline.select(-1);
      this.timeline.highlight(null);
      mount(this.detailsEl, h('p', { class: 'muted' }, 'Click a node, a bar or an event.'));
      return;
    }
    if (sel.trace != null) {
      const tr = this.rec.traces[sel.trace];
      this.timeline.select(sel.trace);
      this.graph.select(tr.key);
      this.timeline.highlight(tr.key);
      this.showTrace(tr);
    } else if (sel.node != null) {
      this.graph.select(sel.node);
      this.timeline.select(-1);
      this.timeline.highlight(sel.node);
      this.showNode(sel.node);
    } else if (sel.event != null) {
      const ev = this.rec.events[sel.event];
      this.showEvent(ev);
    }
  }

  showTrace(tr) {
    const t0 = this.rec.events.length ? this.rec.events[0].t : 0;
    mount(this.detailsEl,
      h('div', { class: 'det-head' }, h('b', null, tr.step), tr.item != null ? h('span', { class: 'tag' }, `item ${tr.item}`) : null, h('span', { 'data-testid': 'attempt-outcome', 'data-outcome': tr.outcome }, badge(outcomeBadge(tr.outcome), tr.outcome))),
      tr.outcome === 'reused' ? h('p', { class: 'reuse-text small', 'data-testid': 'reused-note' },
        'Not run: the fork took this call’s result from the run it was forked from',
        this.rec.doc.lineage?.forked_from?.run_id ? [' (', h('a', { href: `#/run/${encodeURIComponent(this.rec.doc.lineage.forked_from.run_id)}`, class: 'mono' }, this.rec.doc.lineage.forked_from.run_id.slice(0, 8)), ')'] : null,
        '. Input and output are the recorded ones.') : null,
      h('dl', { class: 'kv' },
        kv('node', tr.key), kv('attempt', String(tr.attempt)), kv('session', String(tr.session)),
        tr.group != null ? kv('parallel group', String(tr.group)) : null,
        tr.parent ? kv('nested in', tr.parent) : null,
        kv('started', `+${fmtDuration(tr.start - t0)}`), kv('ended', `+${fmtDuration(tr.end - t0)}`), kv('took', fmtDuration(tr.end - tr.start)),
        kv('journal entry', `#${tr.seq}`)),
      tr.error ? h('div', { class: 'det-error' }, h('b', null, 'error'), h('pre', { class: 'json err' }, tr.error)) : null,
      this.forkOffer(tr),
      jsonBlock(tr.input ?? undefined, { label: 'input' }),
      jsonBlock(DONE_OUTCOMES.has(tr.outcome) ? tr.output ?? undefined : tr.output ?? null, { label: 'output' }),
      jsonBlock(tr.raw, { label: 'trace JSON', open: false }));
  }

  /** The call an attempt belongs to (`step@n`, as the library numbers calls), or null. */
  callOf(idx) {
    const traces = this.rec.traces;
    if (!this.calls || this.calls.length !== traces.length) this.calls = callNumbers(traces);
    return this.calls[idx] ?? null;
  }

  /** "Fork from here" for a selected attempt: its call and a button opening the fork dialog. */
  forkOffer(tr) {
    const call = this.callOf(tr.idx);
    const why = call ? this.noReplay() : 'this attempt was cancelled and its call never made again: there is no call to fork from';
    const id = this.rec.doc.run_id;
    // This run's own fork call, made with an edited input: without an input a new fork would
    // call it with what the code passes there (the reused output before it), not with the
    // input recorded here, so the dialog always sends the input.
    const origin = this.rec.doc.lineage?.forked_from;
    const editedHere = !!call && origin?.input !== undefined && `${origin.at?.step}@${origin.at?.occurrence ?? 1}` === call.spec;
    return h('div', { class: 'fork-offer' },
      h('button', {
        class: 'btn small', 'data-testid': 'fork-open', 'data-at': call?.spec ?? '', disabled: !!why,
        title: why ?? `fork the run from call ${call.spec}: a new run reuses everything before it`,
        onclick: () => openForkDialog({
          runId: id,
          spec: call.spec,
          recordedInput: this.rec.traces[call.trace]?.input ?? tr.input,
          sendInput: editedHere,
          onForked: (newId) => { location.hash = `#/run/${encodeURIComponent(newId)}`; },
        }),
      }, icon('fork'), 'Fork from here'),
      call ? h('span', { class: 'muted small' }, ' call ', h('code', { 'data-testid': 'call-spec' }, call.spec)) : null);
  }

  showNode(key) {
    const n = this.model.byKey.get(key);
    const d = this.derived?.get(key);
    const attempts = this.rec.traces.filter((t) => t.key === key || t.key.startsWith(`${key}>`) || (n && n.steps.includes(t.key)));
    const t0 = this.rec.events.length ? this.rec.events[0].t : 0;
    mount(this.detailsEl,
      h('div', { class: 'det-head' }, h('b', null, n ? (n.name ?? n.label) : key), h('span', { class: 'tag' }, n ? (n.nested ? 'nested flow' : n.kind) : 'step'), d ? badge(stateBadge(d.state), d.state) : null),
      h('dl', { class: 'kv' },
        kv('node', key),
        n?.node?.retry != null ? kv('retry', String(n.node.retry)) : null,
        n?.node?.timeout_ms != null ? kv('timeout', `${n.node.timeout_ms} ms`) : null,
        n?.node?.predicate ? kv('predicate', n.node.predicate) : null,
        n?.node?.until ? kv('until', n.node.until) : null,
        d?.iterations != null ? kv('iterations', String(d.iterations)) : null,
        d?.items != null ? kv('items', `${d.items} (${d.itemsDone} done, ${d.itemsFailed} failed)`) : null,
        d?.taken !== undefined ? kv('taken', String(d.taken)) : null,
        kv('attempts', String(attempts.length))),
      attempts.length ? h('table', { class: 'mini' },
        h('thead', null, h('tr', null, h('th', null, 'step'), h('th', null, 'item'), h('th', null, 'att.'), h('th', null, 'sess.'), h('th', null, 'outcome'), h('th', null, 'start'), h('th', null, 'took'))),
        h('tbody', null, attempts.slice(0, 500).map((t) => h('tr', { class: 'clickable', onclick: () => this.select({ trace: t.idx }) },
          h('td', null, t.step), h('td', null, t.item ?? ''), h('td', null, String(t.attempt)), h('td', null, String(t.session)),
          h('td', { class: `o-${t.outcome}` }, t.outcome), h('td', null, `+${fmtDuration(t.start - t0)}`), h('td', null, fmtDuration(t.end - t.start)))))) : null,
      attempts.length > 500 ? h('p', { class: 'muted small' }, `first 500 of ${attempts.length}`) : null);
  }

  showEvent(ev) {
    mount(this.detailsEl,
      h('div', { class: 'det-head' }, h('b', null, EVENT_KIND_LABELS[ev.kind]), ev.seq != null ? h('span', { class: 'tag' }, `entry #${ev.seq}`) : null),
      h('p', null, eventText(ev, this.rec.traces)),
      ev.entry ? jsonBlock({ ...ev.entry, traces: ev.entry.traces ? `(${ev.entry.traces.length} traces)` : undefined }, { label: 'journal entry' }) : null);
  }

  // ------------------------------------------------------------------------------ live

  connect() {
    if (this.es || this.disposed || typeof EventSource === 'undefined') return;
    const es = new EventSource(api.eventsUrl(this.source.id, this.rec.lastSeq), { withCredentials: false });
    this.es = es;
    this.liveEl.hidden = false;
    this.liveEl.textContent = 'connecting';
    this.liveEl.className = 'live-dot connecting';
    es.onopen = () => {
      this.liveEl.textContent = FINISHED.has(this.rec.doc.status) ? 'connected' : 'live';
      this.liveEl.className = 'live-dot on';
    };
    es.addEventListener('entry', (m) => {
      try {
        if (this.rec.addEntry(JSON.parse(m.data))) this.scheduleUpdate();
      } catch (e) {
        this.flash(`bad live entry: ${e.message}`, true);
      }
    });
    es.addEventListener('document', (m) => {
      try {
        this.rec.setDocument(JSON.parse(m.data));
        this.scheduleUpdate();
      } catch (e) {
        this.flash(`bad live document: ${e.message}`, true);
      }
    });
    es.addEventListener('end', () => {
      es.close();
      if (this.es === es) this.es = null;
      this.liveEl.textContent = 'finished';
      this.liveEl.className = 'live-dot off';
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        if (this.es === es) this.es = null;
        this.liveEl.textContent = 'disconnected';
        this.liveEl.className = 'live-dot off';
      } else {
        this.liveEl.textContent = 'reconnecting';
        this.liveEl.className = 'live-dot connecting';
      }
    };
  }

  scheduleUpdate() {
    if (this.pendingUpdate) return;
    this.pendingUpdate = true;
    const run = () => {
      this.pendingUpdate = false;
      if (!this.disposed) this.applyLive();
    };
    if (document.hidden) setTimeout(run, 16);
    else requestAnimationFrame(run);
  }

  applyLive() {
    const n = this.rec.events.length;
    const dirty = this.rec.takeDirty();
    const following = this.follow && !this.playing;
    const target = following ? n : Math.min(this.k, n);
    if (dirty < this.state.k) {
      this.k = target;
      this.recompute();
    } else {
      const { events, traces } = this.rec;
      for (let i = this.state.k; i < target; i++) applyEvent(this.state, events[i], traces);
      this.k = target;
    }
    this.follow = this.k === n;
    this.refreshMarks();
    this.timeline.setData(this.rec, this.model);
    this.log.setData(this.rec);
    this.refreshHeader();
    this.refreshPosition(following);
  }

  // ------------------------------------------------------------------------------ operations

  async op(kind) {
    const id = this.rec.doc.run_id;
    const btn = kind === 'resume' ? this.resumeBtn : this.cancelBtn;
    if (kind === 'cancel' && !window.confirm(`Cancel run ${id}? It will never run again.`)) return;
    btn.disabled = true;
    this.flash(`${kind}…`);
    try {
      const res = await api[kind](id);
      this.flash(`${kind}: ${res && res.status ? res.status : 'ok'}`);
      if (!this.es) this.connect();
    } catch (e) {
      this.flash(`${kind} failed: ${e.message}`, true);
    } finally {
      this.refreshHeader();
    }
  }

  flash(text, error = false) {
    this.opResult.textContent = text;
    this.opResult.classList.toggle('err', error);
    this.opResult.dataset.error = String(error);
  }

  downloadBundle() {
    const b = this.source.bundle;
    const blob = new Blob([JSON.stringify(b, null, 1)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: this.source.fileName || `${b.document.flow}-${b.document.run_id}.orchflow.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }
}

/** A performance mark (visible in the browser's profiler and to tests). */
function mark(name) {
  if (typeof performance !== 'undefined' && performance.mark) performance.mark(name);
}

function kv(k, v) {
  return [h('dt', null, k), h('dd', null, v)];
}

/** The badge class of an attempt's outcome. */
function outcomeBadge(outcome) {
  switch (outcome) {
    case 'succeeded':
      return 'completed';
    case 'reused':
      return 'reused';
    case 'suspended':
      return 'suspended';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'failed';
  }
}

function stateBadge(state) {
  switch (state) {
    case 'succeeded':
    case 'retried':
      return 'completed';
    case 'reused':
      return 'reused';
    case 'running':
      return 'running';
    case 'failed':
      return 'failed';
    case 'suspended':
      return 'suspended';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'queued';
  }
}
