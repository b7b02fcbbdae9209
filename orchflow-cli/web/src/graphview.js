// The flow's graph as SVG: drawn once from the layout, then only attributes change as the
// scrubber moves or live events arrive (`update`).
//
// Every node of the model is one element with data-testid="node", data-node-id (its key),
// data-kind and data-state; loops carry data-iterations, maps data-items, arms data-taken.

import { s } from './dom.js';
import { layout, headerText, stepLines, STEP_H } from './layout.js';

const STATE_ICON = {
  pending: '',
  running: '●',
  succeeded: '✓',
  reused: '↩',
  retried: '↻',
  failed: '✗',
  suspended: '⏸',
  cancelled: '⊘',
};

export class GraphView {
  constructor(container, model, { onSelect } = {}) {
    this.container = container;
    this.model = model;
    this.onSelect = onSelect || (() => {});
    this.els = new Map();
    this.edgeEls = [];
    this.selected = null;
    this.scale = 1;
    this.fitWidth = true;
    this.render();
  }

  render() {
    const { model } = this;
    this.container.replaceChildren();
    if (model.empty) {
      this.container.append(Object.assign(document.createElement('p'), {
        className: 'muted pad',
        textContent: 'No graph recorded for this flow: the timeline and the event log still show every attempt.',
      }));
      return;
    }
    const lay = layout(model);
    this.lay = lay;
    const svg = s('svg', {
      class: 'graph',
      viewBox: `0 0 ${lay.width} ${lay.height}`,
      width: lay.width,
      height: lay.height,
      role: 'img',
      'aria-label': `graph of flow ${model.name ?? ''}`,
    });
    svg.append(
      s('defs', null,
        s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
          s('path', { d: 'M0,1 L9,5 L0,9 z', class: 'arrowhead' })),
        s('marker', { id: 'arrow-on', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
          s('path', { d: 'M0,1 L9,5 L0,9 z', class: 'arrowhead on' }))),
    );
    const gClusters = s('g', { class: 'layer-clusters' });
    const gEdges = s('g', { class: 'layer-edges' });
    const gNodes = s('g', { class: 'layer-nodes' });
    svg.append(gClusters, gEdges, gNodes);

    // Clusters, outermost first.
    const clusters = model.nodes.filter((n) => lay.nodes.get(n.key)?.cluster).sort((a, b) => depthOf(model, a) - depthOf(model, b));
    for (const n of clusters) {
      const b = lay.nodes.get(n.key);
      const g = s('g', {
        class: `node cluster kind-${n.nested ? 'flow' : n.kind}`,
        'data-testid': 'node',
        'data-node-id': n.key,
        'data-kind': n.nested ? 'flow' : n.kind,
        'data-state': 'pending',
        tabindex: '-1',
      });
      g.append(s('rect', { class: 'cl-box', x: b.x, y: b.y, width: b.width, height: b.height, rx: 8 }));
      const extra = [];
      if (n.kind === 'branch' || n.kind === 'arm') {
        const text = n.kind === 'arm' ? n.label : `branch ${n.node.index ?? n.label}`;
        g.append(s('text', { class: 'cl-legend', x: b.x + 8, y: b.y + 12 }, text));
      }
      if (b.header) {
        const hb = b.header;
        const hg = s('g', { class: `node-header kind-${n.nested ? 'flow' : n.kind}`, 'data-state': 'pending' });
        if (n.kind === 'if') {
          const cx = hb.x + hb.width / 2;
          const cy = hb.y + hb.height / 2;
          const w = hb.width / 2;
          const hh = hb.height / 2;
          hg.append(s('path', { class: 'hdr-shape', d: `M${cx - w},${cy} L${cx - w + 12},${cy - hh} L${cx + w - 12},${cy - hh} L${cx + w},${cy} L${cx + w - 12},${cy + hh} L${cx - w + 12},${cy + hh} Z` }));
          hg.append(s('text', { class: 'hdr-text', x: cx, y: cy + 4, 'text-anchor': 'middle' }, headerText(n)));
        } else {
          hg.append(s('rect', { class: 'hdr-shape', x: hb.x, y: hb.y, width: hb.width, height: hb.height, rx: hb.height / 2 }));
          hg.append(s('path', { class: 'hdr-icon', d: kindIcon(n), transform: `translate(${hb.x + 10},${hb.y + hb.height / 2 - 6}) scale(0.75)` }));
          hg.append(s('text', { class: 'hdr-text', x: hb.x + 28, y: hb.y + hb.height / 2 + 4 }, headerText(n)));
          if (n.kind === 'loop' || n.kind === 'map') {
            const counter = s('text', { class: 'hdr-counter', x: hb.x + hb.width - 12, y: hb.y + hb.height / 2 + 4, 'text-anchor': 'end' }, '');
            hg.append(counter);
            extra.push(counter);
          }
        }
        hg.append(s('title', null, `${n.key} · ${headerText(n)}`));
        hg.addEventListener('click', (e) => {
          e.stopPropagation();
          this.onSelect({ node: n.key });
        });
        gNodes.append(hg);
        this.els.set(n.key, { main: g, header: hg, counter: extra[0] ?? null, n });
      } else {
        this.els.set(n.key, { main: g, header: null, counter: null, n });
      }
      g.addEventListener('click', (e) => {
        e.stopPropagation();
        this.onSelect({ node: n.key });
      });
      gClusters.append(g);
    }

    // Edges.
    const targetKey = (k) => (k.endsWith('::header') ? k.slice(0, -'::header'.length) : k);
    for (const e of lay.edges) {
      if (e.points.length < 2) continue;
      const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
      const path = s('path', { class: `edge ${e.kind}`, d, 'marker-end': 'url(#arrow)' });
      gEdges.append(path);
      this.edgeEls.push({ el: path, to: targetKey(e.to) });
    }
    for (const r of lay.repeats) {
      const from = lay.all.get(r.from[0]);
      const to = lay.all.get(r.to[0]);
      const loop = r.loop != null ? lay.nodes.get(r.loop) : null;
      if (!from || !to || !loop) continue;
      const xr = loop.x + loop.width - 8;
      const y1 = from.y + from.height / 2;
      const y2 = to.y + to.height / 2;
      const x1 = from.x + from.width;
      const x2 = to.x + to.width;
      const d = `M${x1},${y1} C${xr},${y1} ${xr},${y1} ${xr},${(y1 + y2) / 2} C${xr},${y2} ${xr},${y2} ${x2 + 1},${y2}`;
      const path = s('path', { class: 'edge repeat', d, 'marker-end': 'url(#arrow)' });
      gEdges.append(path);
      this.edgeEls.push({ el: path, to: r.to[0], repeatOf: r.loop });
    }

    // Steps.
    for (const n of model.nodes) {
      const b = lay.nodes.get(n.key);
      if (!b || b.cluster) continue;
      const [name, meta] = stepLines(n);
      const g = s('g', {
        class: 'node step',
        'data-testid': 'node',
        'data-node-id': n.key,
        'data-kind': 'step',
        'data-state': 'pending',
        tabindex: '-1',
      });
      g.append(
        s('rect', { class: 'st-box', x: b.x, y: b.y, width: b.width, height: STEP_H, rx: 6 }),
        s('rect', { class: 'st-bar', x: b.x, y: b.y, width: 4, height: STEP_H, rx: 2 }),
        s('text', { class: 'st-name', x: b.x + 12, y: b.y + 16 }, name),
        s('text', { class: 'st-meta', x: b.x + 12, y: b.y + 30 }, meta),
      );
      const icon = s('text', { class: 'st-icon', x: b.x + b.width - 8, y: b.y + 16, 'text-anchor': 'end' }, '');
      const count = s('text', { class: 'st-count', x: b.x + b.width - 24, y: b.y + 15, 'text-anchor': 'end' }, '');
      const title = s('title', null, `${n.key} · ${name}`);
      g.append(icon, count, title);
      g.addEventListener('click', (e) => {
        e.stopPropagation();
        this.onSelect({ node: n.key });
      });
      gNodes.append(g);
      this.els.set(n.key, { main: g, icon, count, title, n, name });
    }
    svg.addEventListener('click', () => this.onSelect(null));
    this.svg = svg;
    this.container.append(svg);
    this.fit();
  }

  /** Scales the drawing down to the container's width when it is wider (never up). */
  fit() {
    if (!this.svg || !this.lay) return;
    const avail = this.container.clientWidth - 8;
    const scale = this.fitWidth && avail > 0 ? Math.min(1, avail / this.lay.width) : 1;
    this.scale = scale;
    this.svg.setAttribute('width', String(Math.round(this.lay.width * scale)));
    this.svg.setAttribute('height', String(Math.round(this.lay.height * scale)));
  }

  /** Switches between fitting the panel's width and the drawing's own size. */
  toggleFit() {
    this.fitWidth = !this.fitWidth;
    this.fit();
    return this.fitWidth;
  }

  /** Shows the derived node states (`deriveNodes`). */
  update(derived) {
    for (const [key, e] of this.els) {
      const d = derived.get(key) || { state: 'pending', attempts: 0 };
      setAttr(e.main, 'data-state', d.state);
      if (e.header) setAttr(e.header, 'data-state', d.state);
      if (e.n.kind === 'loop') {
        setAttr(e.main, 'data-iterations', String(d.iterations ?? 0));
        if (e.counter) e.counter.textContent = d.iterations ? `×${d.iterations}` : '';
      }
      if (e.n.kind === 'map') {
        setAttr(e.main, 'data-items', String(d.items ?? 0));
        if (e.counter) {
          const parts = [];
          if (d.items) parts.push(`${d.items} item${d.items === 1 ? '' : 's'}`);
          if (d.itemsFailed) parts.push(`${d.itemsFailed} ✗`);
          e.counter.textContent = parts.join(' · ');
        }
      }
      if (e.n.kind === 'arm') {
        if (d.taken === undefined) e.main.removeAttribute('data-taken');
        else setAttr(e.main, 'data-taken', String(d.taken));
      }
      if (e.icon) {
        e.icon.textContent = STATE_ICON[d.state] ?? '';
        e.count.textContent = d.attempts > 1 ? `×${d.attempts}` : '';
        e.title.textContent = `${key} · ${e.name} · ${d.state}${d.attempts ? ` · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` : ''}`;
      }
    }
    for (const ed of this.edgeEls) {
      const d = derived.get(ed.to);
      let on = d && d.state !== 'pending';
      if (ed.repeatOf) on = (derived.get(ed.repeatOf)?.iterations ?? 0) > 1;
      ed.el.classList.toggle('on', !!on);
      const marker = on ? 'url(#arrow-on)' : 'url(#arrow)';
      if (ed.el.getAttribute('marker-end') !== marker) ed.el.setAttribute('marker-end', marker);
    }
  }

  select(key) {
    if (this.selected) this.els.get(this.selected)?.main.classList.remove('selected');
    this.selected = key;
    if (key) this.els.get(key)?.main.classList.add('selected');
  }
}

function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

function depthOf(model, n) {
  let d = 0;
  let p = n.parentKey;
  while (p != null) {
    d++;
    p = model.byKey.get(p)?.parentKey ?? null;
  }
  return d;
}

const ICON_PATHS = {
  group: 'M6 1.5v4L2.5 9v5.5h1.6V9.7L7 7l2.9 2.7v4.8h1.6V9L8 5.5v-4z',
  loop: 'M8 2a6 6 0 1 0 6 6h-2a4 4 0 1 1-1.2-2.8L9 7h5V2l-1.8 1.8A6 6 0 0 0 8 2z',
  map: 'M1 3h9v2H1zM1 7h9v2H1zM1 11h9v2H1zM11 2l4 2-4 2zM11 6l4 2-4 2zM11 10l4 2-4 2z',
  flow: 'M1 2h14v12H1zM3 4v8h10V4zM5 6h6v4H5z',
};

function kindIcon(n) {
  if (n.nested) return ICON_PATHS.flow;
  return ICON_PATHS[n.kind] ?? '';
}
