// Opening an exported bundle (format "orchflow-bundle", version 1) with no server: a file
// input and drag and drop; the run page then renders it entirely in the browser.

import { h, mount } from './dom.js';

/** Checks a parsed bundle: returns an error message, or null when it can be shown. */
export function checkBundle(b) {
  if (!b || typeof b !== 'object' || Array.isArray(b)) return 'not a JSON object';
  if (b.format !== 'orchflow-bundle') return `not an orchflow bundle (format ${JSON.stringify(b.format ?? null)}, expected "orchflow-bundle")`;
  if (b.version !== 1) return `bundle version ${JSON.stringify(b.version ?? null)} is not supported (this viewer reads version 1)`;
  if (!b.document || typeof b.document !== 'object' || typeof b.document.run_id !== 'string') return 'the bundle has no run document';
  if (!Array.isArray(b.journal)) return 'the bundle has no journal';
  return null;
}

export class BundlePage {
  constructor(root, { onOpen }) {
    this.root = root;
    this.onOpen = onOpen;
  }

  start() {
    this.err = h('p', { class: 'err', 'data-testid': 'bundle-error', role: 'alert', hidden: true });
    const input = h('input', { type: 'file', accept: '.json,application/json', 'data-testid': 'bundle-file', onchange: () => input.files[0] && this.read(input.files[0]) });
    const zone = h('label', { class: 'dropzone', 'data-testid': 'bundle-drop' },
      h('div', { class: 'big' }, '⇩'),
      h('div', null, h('b', null, 'Drop an exported run here'), ' or choose a file'),
      h('div', { class: 'muted small' }, 'A bundle from `orchflow runs export ID` or the run page\'s Export button. It is read in this browser only; nothing is uploaded.'),
      input);
    for (const ev of ['dragenter', 'dragover']) zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add('over'); });
    for (const ev of ['dragleave', 'drop']) zone.addEventListener(ev, () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      e.stopPropagation();
      const f = e.dataTransfer?.files?.[0];
      if (f) this.read(f);
    });
    mount(this.root, h('div', { class: 'bundle-page pad' }, h('h1', null, 'Open a bundle'), zone, this.err));
  }

  async read(file) {
    this.err.hidden = true;
    let b;
    try {
      b = JSON.parse(await file.text());
    } catch (e) {
      this.fail(`${file.name}: not JSON (${e.message})`);
      return;
    }
    const problem = checkBundle(b);
    if (problem) {
      this.fail(`${file.name}: ${problem}`);
      return;
    }
    this.onOpen(b, file.name);
  }

  fail(msg) {
    this.err.textContent = msg;
    this.err.hidden = false;
  }
}
