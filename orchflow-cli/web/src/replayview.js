// Replay and fork on the run page, the DOM part: the replay report panel, the lineage line of
// the header, and the "Fork from here" dialog (call spec, input editor, preview table, fork).
// What they say comes from the pure views of replay.js; this file only lays them out.

import { h, mount } from './dom.js';
import { api } from './api.js';
import { reportView, previewRows, forkBody, lineageView } from './replay.js';

const VERDICT_WORD = { compatible: 'compatible', diverges: 'diverges', unreplayable: 'cannot be replayed', unknown: 'unknown' };

function callBox(label, c, testid) {
  if (!c) return h('div', { class: 'rp-call muted', 'data-testid': testid }, h('b', null, label), ' none');
  return h('div', { class: 'rp-call', 'data-testid': testid },
    h('div', null, h('b', null, label), ' ', h('code', null, c.step), ' at ', h('span', { class: 'rp-path' }, c.path)),
    c.source ? h('div', { class: 'small' }, 'defined at ', h('code', { 'data-testid': `${testid}-source` }, c.source)) : null,
    c.input != null ? h('pre', { class: 'json' }, c.input) : h('div', { class: 'muted small' }, 'input not captured'));
}

/** The replay report panel (`data-testid=replay-report`, `data-verdict`). */
export function replayReport(report) {
  const v = reportView(report);
  const d = v.divergence;
  return h('div', { class: `rp rp-${v.verdict}`, 'data-testid': 'replay-report', 'data-verdict': v.verdict },
    h('div', { class: 'rp-head' },
      h('span', { class: `rp-verdict rp-${v.verdict}`, 'data-testid': 'replay-verdict' }, VERDICT_WORD[v.verdict] ?? v.verdict),
      h('span', { class: 'rp-title', 'data-testid': 'replay-title' }, v.title)),
    h('div', { class: 'muted small' }, v.facts.join(' · ')),
    d ? h('div', { class: 'rp-div' },
      h('dl', { class: 'kv' },
        h('dt', null, 'path'), h('dd', null, h('code', { 'data-testid': 'replay-path' }, d.path)),
        h('dt', null, 'what'), h('dd', { 'data-testid': 'replay-kind', 'data-kind': d.kind }, d.kindText),
        h('dt', null, 'message'), h('dd', { 'data-testid': 'replay-message' }, d.message)),
      h('div', { class: 'rp-calls' },
        callBox('recorded', d.recorded, 'replay-recorded'),
        callBox('new code', d.new, 'replay-new'))) : null,
    v.continues ? h('div', { class: 'rp-continues', 'data-testid': 'replay-continues' },
      v.continues.length
        ? [h('b', null, 'The run continues at: '), v.continues.map((c, i) => [i ? ', ' : '', h('code', null, c.step), ' (', c.path, ')'])]
        : h('span', { class: 'muted' }, 'The new code has nothing left to call before the run’s next stop.')) : null,
    v.resume ? h('div', { class: `rp-resume ${v.resume.ok ? 'ok-text' : 'err'}`, 'data-testid': 'replay-resume', 'data-resume': v.resume.kind }, v.resume.text) : null);
}

/**
 * The lineage line of the run header (`data-testid=lineage`), or null. `reused`: how many
 * attempts of the run a fork reused; `onShowReused`: shows them (the note's button).
 */
export function lineageLine(doc, { reused = 0, onShowReused = null } = {}) {
  const v = lineageView(doc, reused);
  if (!v) return null;
  const link = (id) => h('a', { href: `#/run/${encodeURIComponent(id)}`, class: 'mono', title: id, 'data-run-id': id }, id.slice(0, 8));
  const f = v.forkedFrom;
  return h('div', { class: 'lineage', 'data-testid': 'lineage' },
    f ? h('span', { 'data-testid': 'forked-from', 'data-run-id': f.runId, 'data-at': f.spec },
      'forked from ', link(f.runId), ' at ', h('code', null, f.spec), f.path ? [' (', h('span', { class: 'rp-path' }, f.path), ')'] : null,
      f.input != null ? [' with input ', h('code', { class: 'lineage-input', 'data-testid': 'fork-input-edited', title: f.input }, f.input.length > 120 ? `${f.input.slice(0, 117)}…` : f.input)] : null,
      h('span', { class: 'muted', 'data-testid': 'reused-note' }, ` · ${f.note}`),
      reused > 0 && onShowReused ? [' ', h('button', { type: 'button', class: 'btn small', 'data-testid': 'show-reused', title: 'show the reused attempts in the event log', onclick: onShowReused }, 'show them')] : null) : null,
    v.forks.length ? h('span', { 'data-testid': 'forks' }, 'forks: ', v.forks.map((id, i) => [i ? ', ' : '', link(id)])) : null);
}

/** The fork preview table (`data-testid=fork-preview-table`, rows `fork-row`). */
export function previewTable(preview) {
  const p = previewRows(preview);
  return h('div', { class: 'fork-preview' },
    h('p', { class: 'small', 'data-testid': 'fork-summary' }, p.summary),
    h('table', { class: 'mini fork-table', 'data-testid': 'fork-preview-table' },
      h('thead', null, h('tr', null, h('th', null, 'step'), h('th', null, 'path'), h('th', null, 'fork'), h('th', { title: 'repeats side effects' }, '⚠'))),
      h('tbody', null, p.rows.map((r) => h('tr', {
        class: `reuse-${r.reuse}${r.isAt ? ' fork-at' : ''}`,
        'data-testid': 'fork-row',
        'data-step': r.step,
        'data-path': r.path,
        'data-reuse': r.reuse,
        'data-side-effects': String(r.sideEffects),
      },
      h('td', null, h('code', null, r.step)),
      h('td', { class: 'rp-path' }, r.path),
      h('td', null, r.label, r.isAt ? h('span', { class: 'tag' }, 'fork point') : null),
      h('td', null, r.sideEffects ? h('span', { class: 'warn-text', title: 'the recorded run already ran this call to completion: its side effects happen again' }, '⚠') : ''))))));
}

/**
 * The "Fork from here" dialog for run `runId` at call `spec` (`data-testid=fork-dialog`): the
 * input editor prefilled with `recordedInput`, Preview and Fork. The request carries the
 * input only when it was edited, or always with `sendInput`. A successful fork calls
 * `onForked(newRunId)`.
 */
export function openForkDialog({ runId, spec, recordedInput, sendInput = false, onForked }) {
  const recordedText = recordedInput === undefined ? '' : JSON.stringify(recordedInput, null, 2);
  const input = h('textarea', { class: 'fork-input mono', rows: String(Math.min(14, Math.max(3, recordedText.split('\n').length + 1))), spellcheck: 'false', 'data-testid': 'fork-input', 'aria-label': 'input of the call' });
  input.value = recordedText;
  const err = h('p', { class: 'err', 'data-testid': 'fork-error', hidden: true });
  const out = h('div', { class: 'fork-out' });
  const close = () => { dlg.close(); dlg.remove(); };
  const setError = (text) => {
    err.hidden = !text;
    err.textContent = text ?? '';
  };
  const body = () => {
    const b = forkBody(spec, input.value, sendInput ? undefined : recordedInput);
    input.classList.toggle('invalid', !!b.error);
    setError(b.error ?? null);
    return b.body ?? null;
  };
  const previewBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'fork-preview', onclick: async () => {
    const b = body();
    if (!b) return;
    previewBtn.disabled = true;
    mount(out, h('p', { class: 'muted' }, 'previewing…'));
    try {
      const p = await api.forkPreview(runId, b);
      mount(out, previewTable(p));
    } catch (e) {
      mount(out);
      setError(e.message);
    } finally {
      previewBtn.disabled = false;
    }
  } }, 'Preview');
  const forkBtn = h('button', { type: 'button', class: 'btn primary', 'data-testid': 'fork-submit', onclick: async () => {
    const b = body();
    if (!b) return;
    forkBtn.disabled = true;
    try {
      const res = await api.fork(runId, b);
      if (!res || typeof res.run_id !== 'string') throw new Error('the server did not say which run it created');
      close();
      onForked(res.run_id);
    } catch (e) {
      setError(e.message);
      forkBtn.disabled = false;
    }
  } }, 'Fork');
  const dlg = h('dialog', { class: 'fork-dialog', 'data-testid': 'fork-dialog', 'data-run-id': runId, 'data-at': spec, onclose: () => dlg.remove() },
    h('form', { method: 'dialog', class: 'fork-form', onsubmit: (e) => e.preventDefault() },
      h('h2', null, 'Fork from here'),
      h('p', null, 'A new run that takes the recorded results before call ', h('code', { 'data-testid': 'fork-spec' }, spec),
        ' of run ', h('code', { title: runId }, runId.slice(0, 8)), ' and runs it and everything after it on the current code.'),
      h('label', { class: 'small' }, `input of ${spec} (JSON${recordedInput === undefined ? '; the recording has none: leave empty to keep it' : '; edit it to run the call with another input'})`),
      input, err, out,
      h('div', { class: 'answer-actions' }, previewBtn, forkBtn, h('span', { class: 'grow' }),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'fork-close', onclick: close }, 'Close'))));
  input.addEventListener('input', () => { if (!input.classList.contains('invalid')) return; body(); });
  document.body.append(dlg);
  if (typeof dlg.showModal === 'function') dlg.showModal();
  else dlg.setAttribute('open', '');
  input.focus();
  return dlg;
}

/**
 * Loads a replay report into `panel` (the run page's Replay button), re-executing the steps
 * named in `reexecute` (pure steps whose outputs are compared with the recording).
 */
export async function loadReplay(panel, runId, reexecute = []) {
  mount(panel, h('p', { class: 'muted' }, 'replaying against the current build…'));
  panel.hidden = false;
  let shown;
  try {
    shown = replayReport(await api.replay(runId, reexecute));
  } catch (e) {
    shown = h('p', { class: 'err', 'data-testid': 'replay-error' }, `replay failed: ${e.message}`);
  }
  const steps = h('input', { type: 'text', class: 'mono small', size: '28', placeholder: 'step, step', value: reexecute.join(', '), 'data-testid': 'replay-reexecute', 'aria-label': 'steps to re-execute' });
  const again = h('form', { class: 'rp-again small', onsubmit: (e) => {
    e.preventDefault();
    loadReplay(panel, runId, steps.value.split(',').map((x) => x.trim()).filter(Boolean));
  } }, 're-execute pure steps and compare their outputs: ', steps, ' ', h('button', { type: 'submit', class: 'btn small', 'data-testid': 'replay-again' }, 'Replay again'));
  mount(panel, closeButton(panel), shown, again);
}

function closeButton(panel) {
  return h('button', { type: 'button', class: 'btn small rp-close', title: 'close the report', onclick: () => { panel.hidden = true; } }, '×');
}
