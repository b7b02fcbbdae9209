// A small element builder: h('div', {class: 'x', onclick: f, dataset: {testid: 'y'}}, ...children).
// Children may be strings, numbers, nodes, arrays of them, or null/false (skipped).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) setAttrs(el, attrs, true);
  append(el, children);
  return el;
}

function setAttrs(el, attrs, svg = false) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) { if (dv != null) el.dataset[dk] = String(dv); }
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (!svg && (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled')) el[k] = v;
    else if (k === 'class' && !svg) el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A pretty JSON block (collapsed when long). */
export function jsonBlock(value, { label = null, open = true } = {}) {
  const text = value === undefined ? '(not captured)' : JSON.stringify(value, null, 2);
  const pre = h('pre', { class: 'json' }, text);
  if (!label) return pre;
  const copy = value === undefined ? null : h('button', { type: 'button', class: 'btn small copy', title: 'copy the JSON', onclick: (e) => {
    e.preventDefault();
    const btn = e.currentTarget;
    navigator.clipboard?.writeText(text).then(() => { btn.textContent = 'copied'; }, () => { btn.textContent = 'cannot copy'; });
    setTimeout(() => { btn.textContent = 'copy'; }, 1200);
  } }, 'copy');
  const d = h('details', { class: 'json-details' }, h('summary', null, label, copy), pre);
  if (open && text.length < 4000) d.open = true;
  return d;
}

/** Status badge. */
export function badge(status, text = status) {
  return h('span', { class: `badge st-${status}` }, text);
}

/** Calls `f` at most once per `ms`, with the last arguments. */
export function debounce(f, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

const ICONS = {
  first: 'M3 3h2v10H3zM13 3v10L6 8z',
  back: 'M12 3v10L5 8z',
  play: 'M4 2.5v11L13.5 8z',
  pause: 'M4 3h3v10H4zM9 3h3v10H9z',
  step: 'M4 3v10l7-5zM11 3h2v10h-2z',
  last: 'M3 3v10l7-5zM11 3h2v10h-2z',
  fork: 'M6 1.5v4L2.5 9v5.5h1.6V9.7L7 7l2.9 2.7v4.8h1.6V9L8 5.5v-4z',
};

/** A 16×16 icon drawn with one path (no icon font). */
export function icon(name) {
  return s('svg', { class: 'icon', viewBox: '0 0 16 16', width: 14, height: 14, 'aria-hidden': 'true' }, s('path', { d: ICONS[name] ?? '', fill: 'currentColor' }));
}
