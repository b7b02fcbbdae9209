// The graph's layout, by dagre (a compound graph: containers are clusters).
//
// What is laid out: every step that does not run a nested flow is a box; every container
// (group, if, loop, map, a step running a nested flow) is a cluster whose first row is a
// header node (the fork of a group, the decision of an if, the loop with its counter, the map
// with its items, the nested flow's name), so that the cluster's title has its own place and
// edges into a container arrive at its header. Branches and arms are clusters without header.
// A loop's repeat edge is not given to dagre (it would bend the layout); it is drawn beside
// the loop by the view.

import dagre from '@dagrejs/dagre';

export const STEP_H = 38;
export const HEADER_H = 28;

let measureCtx = null;
/** The width of `text` in the given CSS font (an estimate outside a browser). */
export function textWidth(text, font = '600 12px system-ui, sans-serif') {
  if (typeof document !== 'undefined') {
    if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
    if (measureCtx) {
      measureCtx.font = font;
      return measureCtx.measureText(text).width;
    }
  }
  const size = Number(/(\d+)px/.exec(font)?.[1] ?? 12);
  return text.length * size * 0.6;
}

/** What a node's box says, first and second line. */
export function stepLines(n) {
  const k = n.node;
  const meta = [n.key];
  if (k.retry != null) meta.push(`retry ${k.retry}`);
  if (k.timeout_ms != null) meta.push(`timeout ${k.timeout_ms} ms`);
  const name = n.name ?? n.label;
  return [name, meta.join(' · ')];
}

/** The header text of a container. */
export function headerText(n) {
  const k = n.node;
  switch (n.kind) {
    case 'group':
      return `parallel · ${k.branches ?? n.children.length} branches`;
    case 'if':
      return `if ${k.predicate ?? ''}`;
    case 'loop':
      return `loop${k.max != null ? ` · max ${k.max}` : ''}${k.until ? ` · until ${k.until}` : ''}`;
    case 'map':
      return `map${k.limit != null ? ` · limit ${k.limit}` : ''}`;
    default:
      if (n.nested) return `flow ${n.nested.name}`;
      return n.label;
  }
}

function hasHeader(n) {
  return n.kind === 'group' || n.kind === 'if' || n.kind === 'loop' || n.kind === 'map' || n.nested != null;
}

/**
 * Lays out a model: returns {width, height, nodes: Map key → {x, y, width, height, cluster,
 * header?: {x, y, width, height}}, edges: [{from, to, points, kind}], repeats: [{loop, from,
 * to}]} in SVG coordinates (top-left origin).
 */
export function layout(model) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 30, edgesep: 10, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const { byKey } = model;
  const seqIn = new Set();
  const seqOut = new Set();
  for (const e of model.edges) {
    if (e.kind !== 'sequence') continue;
    seqOut.add(e.from);
    seqIn.add(e.to);
  }
  // Children of a node that are the items of its pipeline (not arms/branches): first and last.
  const firstItems = (n) => n.children.filter((c) => !seqIn.has(c) && !['arm', 'branch'].includes(byKey.get(c)?.kind));
  const lastItems = (n) => n.children.filter((c) => !seqOut.has(c) && !['arm', 'branch'].includes(byKey.get(c)?.kind));
  const header = (key) => `${key}::header`;

  const entries = (key) => {
    const n = byKey.get(key);
    if (!n) return [];
    if (n.kind === 'step' && !n.nested) return [key];
    if (hasHeader(n)) return [header(key)];
    return firstItems(n).flatMap(entries);
  };
  const exits = (key) => {
    const n = byKey.get(key);
    if (!n) return [];
    if (n.kind === 'step' && !n.nested) return [key];
    let out;
    if (n.kind === 'group' || n.kind === 'if') {
      const parts = n.children.map((c) => byKey.get(c)).filter(Boolean);
      out = parts.flatMap((p) => exits(p.key));
      const hasElse = parts.some((p) => p.kind === 'arm' && p.node.then === false);
      if (n.kind === 'if' && !hasElse) out.push(header(key));
    } else {
      out = lastItems(n).flatMap(exits);
    }
    if (!out.length && hasHeader(n)) out = [header(key)];
    return out;
  };

  for (const n of model.nodes) {
    if (n.kind === 'step' && !n.nested) {
      const [a, b] = stepLines(n);
      // Room for the name, then the attempt count and the state icon on its right.
      const w = Math.max(textWidth(a, '600 12px system-ui, sans-serif') + 82, textWidth(b, '10px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace') + 30);
      g.setNode(n.key, { width: Math.max(110, Math.ceil(w)), height: STEP_H });
    } else {
      g.setNode(n.key, {});
      if (hasHeader(n)) {
        // Loops and maps show a counter at the right of their header.
        const counter = n.kind === 'loop' ? 56 : n.kind === 'map' ? 96 : 0;
        const w = textWidth(headerText(n), '600 11px system-ui, sans-serif') + (n.kind === 'if' ? 44 : 46) + counter;
        g.setNode(header(n.key), { width: Math.max(80, Math.ceil(w)), height: HEADER_H });
        g.setParent(header(n.key), n.key);
      }
    }
    if (n.parentKey != null) g.setParent(n.key, n.parentKey);
  }
  const edges = [];
  const addEdge = (from, to, kind) => {
    if (from === to || !g.hasNode(from) || !g.hasNode(to)) return;
    const name = `${from}->${to}`;
    if (g.hasEdge(from, to, name)) return;
    g.setEdge(from, to, { kind }, name);
    edges.push({ from, to, kind, name });
  };
  for (const e of model.edges) {
    if (e.kind !== 'sequence') continue;
    for (const x of exits(e.from)) for (const y of entries(e.to)) addEdge(x, y, 'sequence');
  }
  for (const n of model.nodes) {
    if (!hasHeader(n)) continue;
    const parts = n.kind === 'group' || n.kind === 'if' ? n.children : firstItems(n);
    for (const c of parts) for (const y of entries(c)) addEdge(header(n.key), y, 'fork');
  }
  const repeats = [];
  for (const e of model.edges) {
    if (e.kind !== 'repeat') continue;
    const loop = byKey.get(e.from)?.parentKey ?? null;
    repeats.push({ loop, from: exits(e.from), to: entries(e.to) });
  }

  // Branches and arms side by side in declaration order (branch 0, then; on the left).
  const constraints = [];
  for (const n of model.nodes) {
    if (n.kind !== 'group' && n.kind !== 'if') continue;
    const parts = n.children.filter((c) => g.hasNode(c));
    for (let i = 1; i < parts.length; i++) constraints.push({ left: parts[i - 1], right: parts[i] });
  }
  try {
    dagre.layout(g, { constraints });
  } catch {
    dagre.layout(g);
  }

  const nodes = new Map();
  const box = (key) => {
    const v = g.node(key);
    if (!v || !Number.isFinite(v.x)) return null;
    return { x: v.x - v.width / 2, y: v.y - v.height / 2, width: v.width, height: v.height };
  };
  for (const n of model.nodes) {
    const b = box(n.key);
    if (!b) continue;
    const cluster = !(n.kind === 'step' && !n.nested);
    const rec = { ...b, cluster };
    if (hasHeader(n)) rec.header = box(header(n.key));
    nodes.set(n.key, rec);
  }
  const all = new Map();
  for (const key of g.nodes()) {
    const b = box(key);
    if (b) all.set(key, b);
  }
  const outEdges = edges.map((e) => ({ ...e, points: (g.edge(e.from, e.to, e.name)?.points ?? []).map((p) => ({ x: p.x, y: p.y })) }));
  const gl = g.graph();
  return { width: Math.ceil(gl.width ?? 0), height: Math.ceil(gl.height ?? 0), nodes, all, edges: outEdges, repeats, headerKey: header };
}
