// The runs list: filters (flow, status, since) and search (q) kept in the URL's hash, status
// counts, one page at a time with the server's `next` cursor (never everything).

import { h, mount, badge, debounce, icon } from './dom.js';
import { lineageView } from './replay.js';
import { api } from './api.js';
import { fmtDateTime, fmtDuration, fmtAgo, parseTime } from './time.js';

const STATUSES = ['queued', 'running', 'suspended', 'completed', 'failed', 'cancelled'];
const LIMIT = 50;

export class RunsPage {
  constructor(root, params) {
    this.root = root;
    this.params = {
      flow: params.get('flow') ?? '',
      status: params.get('status') ?? '',
      since: params.get('since') ?? '',
      q: params.get('q') ?? '',
    };
    this.cursors = [null]; // the `after` of each page seen, for "previous"
    this.page = 0;
    this.seq = 0;
  }

  start() {
    const p = this.params;
    this.flowIn = h('input', { type: 'text', placeholder: 'flow name', value: p.flow, 'data-testid': 'filter-flow', 'aria-label': 'flow', onchange: () => this.changed() });
    this.statusSel = h('select', { 'data-testid': 'filter-status', 'aria-label': 'status', onchange: () => this.changed() },
      h('option', { value: '' }, 'any status'), STATUSES.map((s) => h('option', { value: s, selected: p.status === s }, s)));
    this.sinceIn = h('input', { type: 'datetime-local', step: '1', value: p.since ? toLocalInput(p.since) : '', 'data-testid': 'filter-since', 'aria-label': 'since', onchange: () => this.changed() });
    this.qIn = h('input', { type: 'search', placeholder: 'search: run id prefix or flow name…', value: p.q, 'data-testid': 'search', 'aria-label': 'search', oninput: debounce(() => this.changed(), 250) });
    this.countsEl = h('div', { class: 'counts' });
    this.msgEl = h('div', { class: 'unreadable' });
    this.tbody = h('tbody');
    this.prevBtn = h('button', { class: 'btn', 'data-testid': 'prev-page', onclick: () => this.go(this.page - 1) }, '← previous');
    this.nextBtn = h('button', { class: 'btn', 'data-testid': 'next-page', onclick: () => this.go(this.page + 1) }, 'next page →');
    this.pageEl = h('span', { class: 'muted small', 'data-testid': 'page' });
    mount(this.root, h('div', { class: 'runs-page pad' },
      h('div', { class: 'toolbar' },
        h('h1', null, 'Runs'), this.countsEl, h('span', { class: 'grow' }),
        h('button', { class: 'btn', title: 'reload (r)', 'data-testid': 'refresh', onclick: () => this.load() }, '↻ refresh')),
      h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); this.changed(); } },
        this.qIn, this.flowIn, this.statusSel, h('label', { class: 'muted small' }, 'since ', this.sinceIn),
        h('button', { type: 'button', class: 'btn small', onclick: () => this.clear() }, 'clear')),
      this.msgEl,
      h('table', { class: 'runs', 'data-testid': 'runs-table' },
        h('thead', null, h('tr', null, ['status', 'run', 'flow', 'created', 'took', 'note'].map((c) => h('th', null, c)))),
        this.tbody),
      h('div', { class: 'pager' }, this.prevBtn, this.pageEl, this.nextBtn)));
    this.qIn.focus();
    // "/" jumps to the search box.
    this.keyHandler = (e) => {
      const tag = e.target?.tagName;
      if (e.key === '/' && tag !== 'INPUT' && tag !== 'TEXTAREA' && tag !== 'SELECT') {
        e.preventDefault();
        this.qIn.focus();
        this.qIn.select();
      }
    };
    document.addEventListener('keydown', this.keyHandler);
    return this.load();
  }

  dispose() {
    document.removeEventListener('keydown', this.keyHandler);
  }

  clear() {
    this.flowIn.value = '';
    this.statusSel.value = '';
    this.sinceIn.value = '';
    this.qIn.value = '';
    this.changed();
  }

  changed() {
    let since = '';
    if (this.sinceIn.value) {
      const d = new Date(this.sinceIn.value);
      if (!Number.isNaN(d.getTime())) since = d.toISOString();
    }
    this.params = { flow: this.flowIn.value.trim(), status: this.statusSel.value, since, q: this.qIn.value.trim() };
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(this.params)) if (v) u.set(k, v);
    const hash = `#/runs${u.toString() ? `?${u}` : ''}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
    this.cursors = [null];
    this.page = 0;
    this.load();
  }

  go(page) {
    if (page < 0 || page >= this.cursors.length) return;
    this.page = page;
    this.load();
  }

  async load() {
    const seq = ++this.seq;
    this.root.querySelector('.runs')?.classList.add('busy');
    let res;
    try {
      res = await api.runs({ ...this.params, limit: LIMIT, after: this.cursors[this.page] });
    } catch (e) {
      if (seq !== this.seq) return;
      mount(this.msgEl, h('p', { class: 'err', 'data-testid': 'runs-error' }, e.message));
      this.root.querySelector('.runs')?.classList.remove('busy');
      return;
    }
    if (seq !== this.seq) return;
    this.root.querySelector('.runs')?.classList.remove('busy');
    const counts = res.counts || {};
    mount(this.countsEl, STATUSES.map((s) => h('button', {
      class: `count st-${s}${this.params.status === s ? ' active' : ''}`,
      'data-testid': `count-${s}`,
      'data-count': String(counts[s] ?? 0),
      title: `show ${s} runs`,
      onclick: () => { this.statusSel.value = this.params.status === s ? '' : s; this.changed(); },
    }, h('span', { class: 'n' }, String(counts[s] ?? 0)), ` ${s}`)));
    const unreadable = Array.isArray(res.unreadable) ? res.unreadable : [];
    mount(this.msgEl, unreadable.length ? h('details', { class: 'warn-box', 'data-testid': 'unreadable', open: true },
      h('summary', null, `${unreadable.length} run${unreadable.length === 1 ? '' : 's'} could not be read`),
      h('ul', null, unreadable.map((m) => h('li', null, h('code', null, m))))) : null);
    const runs = Array.isArray(res.runs) ? res.runs : [];
    const now = Date.now();
    mount(this.tbody, runs.length ? runs.map((d) => {
      const created = parseTime(d.created_at);
      const updated = parseTime(d.updated_at);
      const note = d.error || (d.pending && d.pending.length ? `waiting: ${d.pending.map((p) => p.prompt).join(' · ')}` : '') || d.waiting || '';
      const href = `#/run/${encodeURIComponent(d.run_id)}`;
      return h('tr', {
        class: 'clickable',
        'data-testid': 'run-row',
        'data-run-id': d.run_id,
        'data-status': d.status,
        tabindex: '0',
        onclick: (e) => { if (!(e.target instanceof HTMLAnchorElement)) location.hash = href; },
        onkeydown: (e) => { if (e.key === 'Enter') location.hash = href; },
      },
      h('td', null, badge(d.status)),
      h('td', null, h('a', { href, class: 'mono' }, d.run_id.slice(0, 8)), h('span', { class: 'muted mono small' }, d.run_id.slice(8, 13)), lineageBadges(d)),
      h('td', null, h('a', { href: `#/runs?flow=${encodeURIComponent(d.flow)}`, class: 'flow-link', title: `only ${d.flow} runs` }, d.flow)),
      h('td', { title: fmtDateTime(created) }, fmtAgo(created, now)),
      h('td', null, d.status === 'running' || d.status === 'queued' ? '–' : fmtDuration(updated - created)),
      h('td', { class: `note${d.error ? ' err' : ''}` }, note));
    }) : h('tr', null, h('td', { colspan: '6', class: 'muted pad', 'data-testid': 'no-runs' }, 'No runs match.')));
    if (res.next) {
      this.cursors.length = this.page + 1;
      this.cursors.push(res.next);
    } else {
      this.cursors.length = this.page + 1;
    }
    this.nextBtn.disabled = !res.next;
    this.prevBtn.disabled = this.page === 0;
    this.pageEl.textContent = `page ${this.page + 1} · ${runs.length} runs`;
  }
}

/** The small marks of a forked run and of a run with forks (from the listed document). */
function lineageBadges(d) {
  const l = lineageView(d);
  if (!l) return null;
  const f = l.forkedFrom;
  return [
    f ? h('span', { class: 'tag fork-tag', 'data-testid': 'fork-badge', title: `forked from ${f.runId} at ${f.spec}${f.path ? ` (${f.path})` : ''}${f.input != null ? ' with an edited input' : ''}` }, icon('fork'), 'fork') : null,
    l.forks.length ? h('span', { class: 'tag fork-tag', 'data-testid': 'forks-badge', title: `${l.forks.length} run${l.forks.length === 1 ? ' was' : 's were'} forked from this one` }, `${l.forks.length} fork${l.forks.length === 1 ? '' : 's'}`) : null,
  ];
}

function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
