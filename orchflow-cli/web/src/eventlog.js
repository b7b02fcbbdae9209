// The event log: one row per event of the recording, filtered by step, kind, attempt outcome
// and a regular expression, virtualised (only the rows in view exist, each
// data-testid="event-row" with data-index, data-kind and, for an attempt's start and end, the
// attempt's data-outcome). Events after the scrubber's position are dimmed; the row at the
// position is marked current. An invalid regular expression shows its error
// (data-testid="regex-error") and filters nothing.

import { h } from './dom.js';
import { EVENT_KINDS, EVENT_KIND_LABELS, OUTCOMES } from './model.js';
import { fmtDuration } from './time.js';

const ROW_H = 24;

/** The text a row shows and the regex filter searches. */
export function eventText(ev, traces) {
  if (ev.kind === 'start' || ev.kind === 'end') {
    const tr = traces[ev.trace];
    const where = `${tr.step}${tr.item != null ? ` #${tr.item}` : ''}`;
    const att = `attempt ${tr.attempt}${tr.session > 1 ? ` · session ${tr.session}` : ''}`;
    if (tr.outcome === 'reused') {
      // A call a fork took from the recorded run: the step did not run.
      if (ev.kind === 'start') return `${where} taken from the recorded run (${att})`;
      return `${where} reused: the recorded result, not run again (${att})`;
    }
    if (ev.kind === 'start') return `${where} started (${att})`;
    return `${where} ${tr.outcome} after ${fmtDuration(tr.end - tr.start)} (${att})${tr.error ? `: ${tr.error}` : ''}`;
  }
  if (ev.kind === 'entry' || ev.kind === 'answer') return `#${ev.seq} ${ev.text}`;
  return ev.text ?? ev.kind;
}

/** Compiles the filter box's text: {re} or {error}. Never throws. */
export function compileFilter(text) {
  if (!text) return { re: null };
  try {
    return { re: new RegExp(text, 'i') };
  } catch (e) {
    return { error: e.message };
  }
}

/**
 * The indices of the events that pass the filters: `kind` (an event kind), `outcome` (an
 * attempt outcome: the start and end of the attempts that ended so), `step` (a step name or
 * node key) and `re` (searched in the row's text, kind and outcome).
 */
export function filterEvents(events, traces, { step = '', kind = '', outcome = '', re = null } = {}) {
  const out = [];
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    if (kind && ev.kind !== kind) continue;
    if (outcome && (ev.trace == null || traces[ev.trace].outcome !== outcome)) continue;
    if (step) {
      const name = ev.trace != null ? traces[ev.trace].step : null;
      if (name !== step && ev.key !== step) continue;
    }
    if (re) {
      const tr = ev.trace != null ? traces[ev.trace] : null;
      const hay = `${ev.kind} ${EVENT_KIND_LABELS[ev.kind] ?? ''} ${ev.key ?? ''} ${eventText(ev, traces)} ${tr?.outcome ?? ev.status ?? ''}`;
      if (!re.test(hay)) continue;
    }
    out.push(i);
  }
  return out;
}

export class EventLog {
  constructor(container, { onPick } = {}) {
    this.onPick = onPick || (() => {});
    this.rec = null;
    this.k = 0;
    this.rows = [];
    this.follow = true;
    this.stepSel = h('select', { 'data-testid': 'log-step', 'aria-label': 'filter by step', onchange: () => this.refilter() }, h('option', { value: '' }, 'all steps'));
    this.kindSel = h('select', { 'data-testid': 'log-kind', 'aria-label': 'filter by kind', onchange: () => this.refilter() },
      h('option', { value: '' }, 'all kinds'),
      EVENT_KINDS.map((k) => h('option', { value: k }, EVENT_KIND_LABELS[k])));
    this.outcomeSel = h('select', { 'data-testid': 'log-outcome', 'aria-label': 'filter by attempt outcome', onchange: () => this.refilter() },
      h('option', { value: '' }, 'all outcomes'),
      OUTCOMES.map((o) => h('option', { value: o }, o.replace('_', ' '))));
    this.reInput = h('input', { type: 'search', placeholder: 'regex…', 'data-testid': 'log-regex', 'aria-label': 'filter by regular expression', oninput: () => this.refilter() });
    this.reError = h('span', { class: 'err small', 'data-testid': 'regex-error', hidden: true });
    this.countEl = h('span', { class: 'muted small', 'data-testid': 'event-count' });
    this.viewport = h('div', { class: 'log-viewport', tabindex: '0' });
    this.inner = h('div', { class: 'log-inner' });
    this.viewport.append(this.inner);
    this.viewport.addEventListener('scroll', () => this.paint());
    this.root = h('div', { class: 'eventlog', 'data-testid': 'event-log' },
      h('div', { class: 'log-filters' }, this.stepSel, this.kindSel, this.outcomeSel, this.reInput, this.reError, h('span', { class: 'grow' }), this.countEl),
      this.viewport);
    container.append(this.root);
    new ResizeObserver(() => this.paint()).observe(this.viewport);
  }

  setData(rec) {
    this.rec = rec;
    const names = new Set();
    for (const tr of rec.traces) names.add(tr.step);
    const cur = this.stepSel.value;
    const have = new Set([...this.stepSel.options].map((o) => o.value));
    for (const n of [...names].sort()) if (!have.has(n)) this.stepSel.append(h('option', { value: n }, n));
    this.stepSel.value = cur;
    this.refilter();
  }

  refilter() {
    if (!this.rec) return;
    const f = compileFilter(this.reInput.value);
    this.reError.hidden = !f.error;
    this.reError.textContent = f.error ? `invalid regex: ${f.error}` : '';
    this.reInput.classList.toggle('invalid', !!f.error);
    this.rows = filterEvents(this.rec.events, this.rec.traces, { step: this.stepSel.value, kind: this.kindSel.value, outcome: this.outcomeSel.value, re: f.re ?? null });
    this.countEl.textContent = `${this.rows.length} / ${this.rec.events.length} events`;
    this.inner.style.height = `${this.rows.length * ROW_H}px`;
    this.paint(true);
  }

  /** Shows only the events of attempts that ended with `outcome` ('' for all). */
  setOutcome(outcome) {
    this.outcomeSel.value = outcome;
    this.refilter();
  }

  setPosition(k, { reveal = false } = {}) {
    this.k = k;
    if (reveal && this.rows.length) {
      // Scroll so that the current event (k-1) is in view.
      let lo = 0;
      let hi = this.rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.rows[mid] < k) lo = mid + 1;
        else hi = mid;
      }
      const y = Math.max(0, lo - 1) * ROW_H;
      const vh = this.viewport.clientHeight;
      if (y < this.viewport.scrollTop || y > this.viewport.scrollTop + vh - ROW_H) this.viewport.scrollTop = Math.max(0, y - vh / 2);
    }
    this.paint(true);
  }

  /** Paints on the next frame (many calls in one frame paint once). */
  paint(force = false) {
    this.force = this.force || force;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const f = this.force;
      this.force = false;
      const t0 = performance.now();
      this.paintNow(f);
      performance.measure?.('eventlog:paint', { start: t0, end: performance.now() });
    });
  }

  paintNow(force) {
    if (!this.rec) return;
    const top = this.viewport.scrollTop;
    const vh = this.viewport.clientHeight || 300;
    const from = Math.max(0, Math.floor(top / ROW_H) - 5);
    const to = Math.min(this.rows.length, Math.ceil((top + vh) / ROW_H) + 5);
    if (!force && this.painted && this.painted[0] === from && this.painted[1] === to) return;
    this.painted = [from, to];
    const { events, traces } = this.rec;
    const t0 = events.length ? events[0].t : 0;
    const frag = [];
    for (let r = from; r < to; r++) {
      const i = this.rows[r];
      const ev = events[i];
      const tr = ev.trace != null ? traces[ev.trace] : null;
      const outcome = ev.kind === 'end' ? tr.outcome : ev.kind === 'status' ? ev.status : ev.kind === 'entry' ? ev.record : '';
      const cls = `log-row kind-${ev.kind}${i >= this.k ? ' future' : ''}${i === this.k - 1 ? ' current' : ''}`;
      frag.push(h('div', {
        class: cls,
        style: { top: `${r * ROW_H}px` },
        'data-testid': 'event-row',
        'data-index': i,
        'data-kind': ev.kind,
        'data-outcome': tr ? tr.outcome : null,
        'data-seq': ev.seq ?? null,
        onclick: () => this.onPick(i, ev),
      },
      h('span', { class: 'c-i' }, String(i + 1)),
      h('span', { class: 'c-t' }, `+${fmtDuration(ev.t - t0)}`),
      h('span', { class: `c-k k-${ev.kind}` }, EVENT_KIND_LABELS[ev.kind] ?? ev.kind),
      h('span', { class: 'c-n' }, ev.key ?? ''),
      h('span', { class: `c-x${outcome ? ` o-${outcome}` : ''}` }, eventText(ev, traces))));
    }
    this.inner.replaceChildren(...frag);
  }
}
