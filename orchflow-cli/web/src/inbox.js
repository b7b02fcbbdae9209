// The inbox: every question a suspended run waits on, each with an answer form (a text field,
// or a form made from `pending.schema`), answered with POST /api/runs/{id}/answer.

import { h, mount } from './dom.js';
import { api } from './api.js';
import { formModel, collect } from './schemaform.js';
import { renderForm } from './formview.js';
import { fmtAgo, parseTime } from './time.js';

export class InboxPage {
  constructor(root, { onCount } = {}) {
    this.root = root;
    this.onCount = onCount || (() => {});
  }

  async start() {
    this.list = h('div', { class: 'questions' }, h('p', { class: 'muted' }, 'loading…'));
    mount(this.root, h('div', { class: 'inbox-page pad' },
      h('div', { class: 'toolbar' }, h('h1', null, 'Inbox'), h('span', { class: 'muted' }, 'questions waiting for a person'), h('span', { class: 'grow' }),
        h('button', { class: 'btn', 'data-testid': 'refresh', onclick: () => this.load() }, '↻ refresh')),
      this.list));
    await this.load();
  }

  async load() {
    let qs;
    try {
      qs = await api.questions();
    } catch (e) {
      mount(this.list, h('p', { class: 'err', 'data-testid': 'inbox-error' }, e.message));
      return;
    }
    qs = Array.isArray(qs) ? qs : [];
    this.onCount(qs.length);
    let waiting = qs.length;
    const onAnswered = () => this.onCount(--waiting);
    mount(this.list, qs.length ? qs.map((q) => questionCard(q, { onAnswered })) : h('p', { class: 'muted empty', 'data-testid': 'inbox-empty' }, 'No questions waiting.'));
  }
}

/**
 * One question with its answer form: a text field, or a form from `pending.schema`.
 * `compact` leaves out the flow and run (the run page shows them already).
 */
export function questionCard(q, { compact = false, onAnswered = null } = {}) {
  const p = q.pending || {};
  const err = h('div', { class: 'err small', 'data-testid': 'answer-error', role: 'alert', hidden: true });
  const ok = h('div', { class: 'ok-text small', 'data-testid': 'answer-ok', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'answer-submit' }, 'Answer');
  let getText;
  let body;
  if (p.schema && typeof p.schema === 'object') {
    const field = formModel(p.schema);
    const form = renderForm(field);
    body = h('div', { class: 'schema-form' }, form.el);
    getText = () => {
      const c = collect(field, form.read(), '', true);
      if (c.errors.length) return { error: c.errors.map((e) => `${e.path}: ${e.message}`).join('; ') };
      return { text: JSON.stringify(c.omit ? null : c.value) };
    };
  } else {
    const input = h('textarea', { class: 'answer-text', rows: compact ? 1 : 2, 'data-testid': 'answer-input', placeholder: 'your answer', 'aria-label': 'answer',
      onkeydown: (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); } } });
    body = input;
    getText = () => ({ text: input.value });
  }
  const form = h('form', { class: 'answer-form', onsubmit: async (e) => {
    e.preventDefault();
    err.hidden = true;
    ok.hidden = true;
    const got = getText();
    if (got.error) {
      err.textContent = got.error;
      err.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const res = await api.answer(q.run_id, p.question ?? null, got.text);
      ok.textContent = `answered: run ${res && res.status ? res.status : 'queued'}`;
      ok.hidden = false;
      card.classList.add('answered');
      card.dataset.answered = 'true';
      if (onAnswered) onAnswered(res);
    } catch (x) {
      err.textContent = x.message;
      err.hidden = false;
      submit.disabled = false;
    }
  } }, body, h('div', { class: 'answer-actions' }, submit, h('span', { class: 'muted small' }, p.schema ? 'sent as JSON' : 'ctrl+enter to send'), ok, err));
  const since = parseTime(q.since);
  const card = h('article', { class: `question${compact ? ' compact' : ''}`, 'data-testid': 'question', 'data-run-id': q.run_id, 'data-question': p.question ?? '' },
    h('header', null,
      compact ? null : h('span', { class: 'tag' }, q.flow),
      compact ? null : h('a', { href: `#/run/${encodeURIComponent(q.run_id)}`, class: 'mono small' }, q.run_id.slice(0, 8)),
      h('span', { class: 'muted small' }, `question ${p.question ?? p.step} · step ${p.step}`),
      h('span', { class: 'grow' }),
      h('span', { class: 'muted small' }, fmtAgo(since))),
    h('p', { class: 'prompt' }, p.prompt ?? ''),
    form);
  return card;
}
