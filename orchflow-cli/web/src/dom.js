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
  const d = h('details', { class: 'json-details' }, h('summary', null, label), pre);
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
