// The timeline: every attempt as a bar on a canvas (fast at tens of thousands of bars), one
// lane per node (rows within a lane where attempts overlap), coloured by outcome. Retries
// are joined to the attempt they follow by a dotted line across the backoff gap; session
// starts are marked; long idle gaps are collapsed (see lanes.js). At scrubber position k only
// attempts started before k are drawn, those not yet ended as running up to the cursor. An
// attempt that took no time (a call a fork reused from the recorded run) is drawn as a
// diamond on its start, so that it stays visible at any zoom.
//
// Hooks: data-testid="timeline" on the panel; a hidden data-testid="attempt-count" holding
// the number of bars drawn at the current position (data-total: all attempts; data-outcomes:
// those drawn by outcome, "reused:2 succeeded:5"; data-markers: the first 200 diamonds
// painted in view, "trace:x:y …" in CSS pixels of the canvas).

import { h } from './dom.js';
import { buildLanes, buildAxis, niceStep } from './lanes.js';
import { fmtDuration } from './time.js';

const ROW_H = 18;
const AXIS_H = 26;
const LABEL_W = 150;

const OUTCOME_VAR = {
  succeeded: '--ok',
  reused: '--reuse',
  failed: '--bad',
  timed_out: '--warn',
  panicked: '--bad',
  cancelled: '--muted2',
  suspended: '--susp',
  running: '--run',
};

export class Timeline {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.k = 0;
    this.selected = -1;
    this.highlightKey = null;
    this.view = null; // [v0, v1] when zoomed
    this.count = h('span', { class: 'sr-only', 'data-testid': 'attempt-count' }, '0');
    this.canvas = h('canvas', { class: 'tl-canvas' });
    this.spacer = h('div', { class: 'tl-spacer' });
    this.scroller = h('div', { class: 'tl-scroll' }, this.canvas, this.spacer);
    this.tip = h('div', { class: 'tl-tip', hidden: true });
    this.root = h('div', { class: 'timeline', 'data-testid': 'timeline' }, this.count, this.scroller, this.tip);
    container.append(this.root);
    this.scroller.addEventListener('scroll', () => this.draw());
    this.canvas.addEventListener('click', (e) => this.click(e));
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    this.canvas.addEventListener('dblclick', () => { this.view = null; this.draw(); });
    let drag = null;
    this.canvas.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || e.offsetX < LABEL_W) return;
      drag = { x: e.clientX, view: this.currentView(), moved: false };
    });
    this.onMove = (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (!drag.moved) return;
      const [v0, v1] = drag.view;
      const dv = (-dx / this.plotW()) * (v1 - v0);
      this.view = [v0 + dv, v1 + dv];
      this.draw();
    };
    this.onUp = () => {
      if (drag && drag.moved) this.suppressClick = true;
      drag = null;
    };
    window.addEventListener('pointermove', this.onMove);
    window.addEventListener('pointerup', this.onUp);
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.scroller);
    this.colors = null;
    this.mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    this.onScheme = () => { this.colors = null; this.draw(); };
    this.mq?.addEventListener?.('change', this.onScheme);
  }

  /** Stops listening to the window (the page is left). */
  dispose() {
    window.removeEventListener('pointermove', this.onMove);
    window.removeEventListener('pointerup', this.onUp);
    this.mq?.removeEventListener?.('change', this.onScheme);
    this.ro.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  /** New data (initial load or live update): recomputes lanes and axis. */
  setData(recording, model) {
    this.rec = recording;
    this.model = model;
    this.geo = buildLanes(recording, model);
    const oldAxis = this.axis;
    this.axis = buildAxis(recording);
    const n = recording.traces.length;
    this.vStart = new Float64Array(n);
    this.vEnd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const tr = recording.traces[i];
      this.vStart[i] = this.axis.toV(tr.start);
      this.vEnd[i] = this.axis.toV(tr.end);
    }
    if (this.view && oldAxis && oldAxis.vmax !== this.axis.vmax) this.view = null;
    this.sessions = [];
    const firstOf = new Map();
    for (const tr of recording.traces) {
      const f = firstOf.get(tr.session);
      if (f == null || tr.start < f) firstOf.set(tr.session, tr.start);
    }
    for (const [sess, t] of firstOf) if (sess > 1) this.sessions.push({ session: sess, t });
    this.count.dataset.total = String(recording.traces.length);
    this.draw();
  }

  setPosition(k) {
    this.k = k;
    this.draw();
  }

  /** How many attempts started before position k (the bars drawn). */
  countAt(k) {
    let n = 0;
    for (const tr of this.rec.traces) if (tr.startIdx >= 0 && tr.startIdx < k) n++;
    return n;
  }

  select(traceIdx) {
    this.selected = traceIdx;
    this.draw();
  }

  highlight(key) {
    this.highlightKey = key;
    if (key && this.geo) {
      const lane = this.geo.lanes.find((l) => l.key === key);
      if (lane) {
        const y = lane.firstRow * ROW_H;
        const top = this.scroller.scrollTop;
        const vh = this.viewportH() - AXIS_H;
        if (y < top || y > top + vh - ROW_H) this.scroller.scrollTop = Math.max(0, y - ROW_H * 2);
      }
    }
    this.draw();
  }

  viewportH() {
    return this.scroller.clientHeight || 320;
  }

  plotW() {
    return Math.max(10, (this.scroller.clientWidth || 800) - LABEL_W - 12);
  }

  currentView() {
    if (this.view) return this.view;
    const vmax = this.axis?.vmax ?? 1;
    return [-vmax * 0.01, vmax * 1.03];
  }

  xOf(t) {
    const [v0, v1] = this.currentView();
    return LABEL_W + ((this.axis.toV(t) - v0) / (v1 - v0)) * this.plotW();
  }

  readColors() {
    const cs = getComputedStyle(this.root);
    const get = (n) => cs.getPropertyValue(n).trim() || '#888';
    const c = {};
    for (const n of ['--ok', '--reuse', '--bad', '--warn', '--muted2', '--susp', '--run', '--fg', '--muted', '--line', '--bg', '--bg2', '--accent', '--sel']) c[n] = get(n);
    this.colors = c;
    return c;
  }

  /** Draws on the next frame (many calls in one frame draw once). */
  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const t0 = performance.now();
      this.drawNow();
      performance.measure?.('timeline:draw', { start: t0, end: performance.now() });
    });
  }

  /** Draws the visible part; cheap enough to run on every scrubber move. */
  drawNow() {
    if (!this.rec || !this.axis) return;
    const dpr = window.devicePixelRatio || 1;
    const W = this.scroller.clientWidth || 800;
    const H = this.viewportH();
    const cv = this.canvas;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
      cv.width = Math.round(W * dpr);
      cv.height = Math.round(H * dpr);
      cv.style.width = `${W}px`;
      cv.style.height = `${H}px`;
    }
    const spacer = `${Math.max(0, AXIS_H + this.geo.rows * ROW_H + 6 - H)}px`;
    if (this.spacer.style.height !== spacer) this.spacer.style.height = spacer;
    const C = this.colors || this.readColors();
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const top = this.scroller.scrollTop;
    const { lanes, rowOf, prev } = this.geo;
    const rowY = (r) => AXIS_H + r * ROW_H - top;
    const k = this.k;
    const events = this.rec.events;
    const cursorT = k > 0 ? events[Math.min(k, events.length) - 1].t : -Infinity;

    // Lane backgrounds and labels.
    const firstVisible = Math.floor(top / ROW_H);
    const lastVisible = Math.ceil((top + H - AXIS_H) / ROW_H);
    lanes.forEach((lane, i) => {
      const y0 = rowY(lane.firstRow);
      const y1 = rowY(lane.firstRow + lane.rows);
      if (y1 < AXIS_H || y0 > H) return;
      if (i % 2 === 0) {
        ctx.fillStyle = C['--bg2'];
        ctx.fillRect(0, y0, W, y1 - y0);
      }
      if (lane.key === this.highlightKey) {
        ctx.fillStyle = C['--sel'];
        ctx.globalAlpha = 0.18;
        ctx.fillRect(0, y0, W, y1 - y0);
        ctx.globalAlpha = 1;
      }
      ctx.fillStyle = C['--fg'];
      ctx.font = '600 11px system-ui, sans-serif';
      // Steps of nested flows are indented under the step that runs them.
      const indent = 8 + 10 * (lane.depth ?? 0);
      ctx.fillText(clip(ctx, lane.label, LABEL_W - 52 - indent), indent, y0 + ROW_H / 2);
      ctx.font = '10px ui-monospace, monospace';
      ctx.fillStyle = C['--muted'];
      const id = clip(ctx, lane.id, 52);
      ctx.fillText(id, LABEL_W - 8 - ctx.measureText(id).width, y0 + ROW_H / 2);
    });
    ctx.font = '10px system-ui, sans-serif';

    // Collapsed gaps and session starts.
    for (const p of this.axis.pieces) {
      if (!p.gap) continue;
      const x0 = this.xOf(p.t0);
      const x1 = this.xOf(p.t1);
      ctx.fillStyle = C['--bg2'];
      ctx.fillRect(x0, AXIS_H, x1 - x0, H - AXIS_H);
      ctx.strokeStyle = C['--line'];
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(x0, AXIS_H);
      ctx.lineTo(x0, H);
      ctx.moveTo(x1, AXIS_H);
      ctx.lineTo(x1, H);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    for (const sess of this.sessions) {
      const x = this.xOf(sess.t) - 2;
      ctx.strokeStyle = C['--accent'];
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x, AXIS_H - 6);
      ctx.lineTo(x, H);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.lineWidth = 1;
    }

    // Bars.
    let drawn = 0;
    const byOutcome = new Map();
    const markers = [];
    const traces = this.rec.traces;
    const xmin = LABEL_W;
    const xmax = W;
    const covered = new Float64Array(this.geo.rows).fill(-Infinity);
    const sel = this.selected;
    const [vv0, vv1] = this.currentView();
    const scale = this.plotW() / (vv1 - vv0);
    const vCursor = this.axis.toV(cursorT);
    const { vStart, vEnd } = this;
    // Successes first, then everything else on top (a failure stays visible among thousands).
    const later = [];
    for (let pass = 0; pass < 2; pass++) {
    const n = pass === 0 ? traces.length : later.length;
    for (let j = 0; j < n; j++) {
      const i = pass === 0 ? j : later[j];
      const tr = traces[i];
      if (pass === 0 && tr.startIdx >= 0 && tr.startIdx < k) {
        const running = !(tr.endIdx >= 0 && tr.endIdx < k);
        const o = running ? 'running' : tr.outcome;
        byOutcome.set(o, (byOutcome.get(o) ?? 0) + 1);
      }
      if (pass === 0 && tr.outcome !== 'succeeded' && tr.startIdx >= 0 && tr.startIdx < k) {
        drawn++;
        later.push(i);
        continue;
      }
      if (!(tr.startIdx >= 0 && tr.startIdx < k)) continue;
      if (pass === 0) drawn++;
      const r = rowOf[i];
      if (r < firstVisible - 1 || r > lastVisible + 1) continue;
      const running = !(tr.endIdx >= 0 && tr.endIdx < k);
      const x0 = LABEL_W + (vStart[i] - vv0) * scale;
      if (!running && isInstant(tr)) {
        // No duration: a diamond centred on its moment.
        if (x0 < xmin - MARK_R || x0 > xmax + MARK_R) continue;
        const cy = rowY(r) + ROW_H / 2;
        ctx.fillStyle = C[OUTCOME_VAR[tr.outcome] ?? '--muted2'];
        ctx.beginPath();
        ctx.moveTo(x0, cy - MARK_R);
        ctx.lineTo(x0 + MARK_R, cy);
        ctx.lineTo(x0, cy + MARK_R);
        ctx.lineTo(x0 - MARK_R, cy);
        ctx.closePath();
        ctx.fill();
        if (i === this.selected) {
          ctx.strokeStyle = C['--fg'];
          ctx.lineWidth = 2;
          ctx.stroke();
          ctx.lineWidth = 1;
        }
        if (x0 >= xmin && cy >= AXIS_H && markers.length < 200) markers.push(`${i}:${Math.round(x0)}:${Math.round(cy)}`);
        continue;
      }
      let x1 = LABEL_W + ((running ? Math.max(vStart[i], vCursor) : vEnd[i]) - vv0) * scale;
      if (x1 < xmin || x0 > xmax) continue;
      if (x1 - x0 < 2) x1 = x0 + 2;
      // A bar hidden under the ones already drawn in its row (thousands per pixel when zoomed out).
      if (x1 <= covered[r] + 0.5 && i !== sel && prev[i] < 0 && tr.outcome === 'succeeded' && !running) continue;
      if (x1 > covered[r]) covered[r] = x1;
      const y = rowY(r) + 3;
      const col = C[OUTCOME_VAR[running ? 'running' : tr.outcome] ?? '--muted2'];
      ctx.fillStyle = col;
      ctx.globalAlpha = running ? 0.55 : tr.session > 1 ? 0.92 : 1;
      ctx.fillRect(Math.max(x0, xmin), y, Math.min(x1, xmax) - Math.max(x0, xmin), ROW_H - 6);
      ctx.globalAlpha = 1;
      if (i === this.selected) {
        ctx.strokeStyle = C['--fg'];
        ctx.lineWidth = 2;
        ctx.strokeRect(x0 - 1, y - 1, x1 - x0 + 2, ROW_H - 4);
        ctx.lineWidth = 1;
      }
      const label = tr.item != null ? `#${tr.item}${tr.attempt > 1 ? ` a${tr.attempt}` : ''}` : tr.attempt > 1 ? `a${tr.attempt}` : '';
      if (label && x1 - x0 > 16 && x1 - x0 > ctx.measureText(label).width + 6) {
        ctx.fillStyle = '#fff';
        ctx.fillText(label, Math.max(x0, xmin) + 3, y + (ROW_H - 6) / 2 + 0.5);
      }
      // The backoff before a retry.
      const p = prev[i];
      if (p >= 0) {
        const px = LABEL_W + (vEnd[p] - vv0) * scale;
        const py = rowY(rowOf[p]) + ROW_H / 2;
        ctx.strokeStyle = C['--bad'];
        ctx.setLineDash([2, 2]);
        ctx.beginPath();
        ctx.moveTo(px, py);
        ctx.lineTo(x0, y + (ROW_H - 6) / 2);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    }
    this.count.textContent = String(drawn);
    this.count.dataset.outcomes = [...byOutcome].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([o, c]) => `${o}:${c}`).join(' ');
    this.count.dataset.markers = markers.join(' ');

    // Axis on top.
    ctx.fillStyle = C['--bg'];
    ctx.fillRect(0, 0, W, AXIS_H);
    ctx.strokeStyle = C['--line'];
    ctx.beginPath();
    ctx.moveTo(0, AXIS_H - 0.5);
    ctx.lineTo(W, AXIS_H - 0.5);
    ctx.stroke();
    ctx.fillStyle = C['--muted'];
    ctx.font = '10px system-ui, sans-serif';
    const [v0, v1] = this.currentView();
    const msPerPx = (v1 - v0) / this.plotW();
    const step = niceStep(msPerPx * 90);
    const origin = this.axis.start;
    let lastEnd = LABEL_W;
    const axisLabel = (text, x, y) => {
      const w = ctx.measureText(text).width;
      if (x < lastEnd + 6 || x + w > W) return false;
      ctx.fillText(text, x, y);
      lastEnd = x + w;
      return true;
    };
    for (const p of this.axis.pieces) {
      const px0 = this.xOf(p.t0);
      const px1 = this.xOf(p.t1);
      if (px1 < LABEL_W || px0 > W) continue;
      if (p.gap) {
        const text = `⋯ ${fmtDuration(p.t1 - p.t0)}`;
        const w = ctx.measureText(text).width;
        if (w + 4 < px1 - px0) axisLabel(text, (px0 + px1) / 2 - w / 2, AXIS_H / 2 - 2);
        else axisLabel('⋯', (px0 + px1) / 2 - 4, AXIS_H / 2 - 2);
        lastEnd = Math.max(lastEnd, px1);
        continue;
      }
      const first = Math.ceil((p.t0 - origin) / step) * step;
      for (let off = first; origin + off <= p.t1; off += step) {
        const x = this.xOf(origin + off);
        if (x < LABEL_W || x > W) continue;
        if (axisLabel(`+${fmtDuration(off)}`, x + 3, AXIS_H / 2 - 2)) ctx.fillRect(x, AXIS_H - 6, 1, 6);
      }
    }
    // Journal entries (checkpoints) as ticks under the axis: stops red, answers purple.
    let lastX = -1;
    for (let i = 0; i < Math.min(k, events.length); i++) {
      const ev = events[i];
      if (ev.kind !== 'entry' && ev.kind !== 'answer') continue;
      const x = Math.round(LABEL_W + (this.axis.toV(ev.t) - vv0) * scale);
      const special = ev.kind === 'answer' || ev.record === 'stopped';
      if ((x === lastX && !special) || x < LABEL_W || x > W) continue;
      lastX = x;
      ctx.fillStyle = ev.kind === 'answer' ? C['--susp'] : ev.record === 'stopped' ? C['--bad'] : C['--muted2'];
      ctx.fillRect(x, AXIS_H - 4, special ? 2 : 1, 4);
    }
    let sessEnd = -Infinity;
    for (const sess of this.sessions) {
      const x = this.xOf(sess.t);
      if (x < LABEL_W || x > W) continue;
      // "session 3", or "s3" when the previous label is close; nothing when even that collides.
      let label = `session ${sess.session}`;
      let w = ctx.measureText(label).width + 8;
      let lx = x - 2 + w > W ? x - w : x - 2; // left of the line when there is no room
      if (lx < sessEnd + 2) {
        label = `s${sess.session}`;
        w = ctx.measureText(label).width + 8;
        lx = Math.max(x - 2, sessEnd + 2);
        if (lx + w > W || lx > x + 20) continue;
      }
      sessEnd = lx + w;
      ctx.fillStyle = C['--accent'];
      ctx.fillRect(lx, AXIS_H - 13, w, 12);
      ctx.fillStyle = '#fff';
      ctx.fillText(label, lx + 4, AXIS_H - 7);
    }
    // Cursor.
    if (k > 0 && k < events.length) {
      const x = this.xOf(cursorT);
      ctx.strokeStyle = C['--fg'];
      ctx.globalAlpha = 0.7;
      ctx.beginPath();
      ctx.moveTo(x + 0.5, 0);
      ctx.lineTo(x + 0.5, H);
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = C['--bg'];
    ctx.fillRect(0, 0, LABEL_W, AXIS_H - 1);
    ctx.fillStyle = C['--muted'];
    ctx.fillText(`${drawn} / ${traces.length} attempts`, 8, AXIS_H / 2);
  }

  hit(e) {
    if (!this.rec) return -1;
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    if (x < LABEL_W || y < AXIS_H) return -1;
    const r = Math.floor((y - AXIS_H + this.scroller.scrollTop) / ROW_H);
    const { rowOf } = this.geo;
    let best = -1;
    let bestD = 4;
    const traces = this.rec.traces;
    for (let i = 0; i < traces.length; i++) {
      if (rowOf[i] !== r) continue;
      const tr = traces[i];
      if (!(tr.startIdx >= 0 && tr.startIdx < this.k)) continue;
      let x0 = this.xOf(tr.start);
      let x1 = Math.max(this.xOf(tr.end), x0 + 2);
      if (isInstant(tr)) {
        x0 -= MARK_R;
        x1 = x0 + 2 * MARK_R;
      }
      const d = x < x0 ? x0 - x : x > x1 ? x - x1 : 0;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  }

  click(e) {
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    const rect = this.canvas.getBoundingClientRect();
    if (e.clientX - rect.left < LABEL_W && e.clientY - rect.top > AXIS_H) {
      // A lane's label selects its node.
      const r = Math.floor((e.clientY - rect.top - AXIS_H + this.scroller.scrollTop) / ROW_H);
      const lane = this.geo?.lanes.find((l) => r >= l.firstRow && r < l.firstRow + l.rows);
      if (lane) this.onSelect({ node: lane.key });
      return;
    }
    const i = this.hit(e);
    if (i >= 0) this.onSelect({ trace: i });
  }

  hover(e) {
    const i = this.hit(e);
    if (i < 0) {
      this.tip.hidden = true;
      const rect = this.canvas.getBoundingClientRect();
      this.canvas.style.cursor = e.clientX - rect.left < LABEL_W && e.clientY - rect.top > AXIS_H ? 'pointer' : '';
      return;
    }
    const tr = this.rec.traces[i];
    this.canvas.style.cursor = 'pointer';
    this.tip.hidden = false;
    this.tip.textContent = `${tr.step}${tr.item != null ? ` #${tr.item}` : ''} · attempt ${tr.attempt} · session ${tr.session} · ${tr.outcome} · ${fmtDuration(tr.end - tr.start)}${tr.error ? ` · ${tr.error}` : ''}`;
    const rect = this.root.getBoundingClientRect();
    this.tip.style.left = `${Math.min(e.clientX - rect.left + 12, rect.width - 260)}px`;
    this.tip.style.top = `${e.clientY - rect.top + 14}px`;
  }

  wheel(e) {
    if (!(e.ctrlKey || e.metaKey || e.altKey)) return; // plain wheel scrolls the lanes
    e.preventDefault();
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left - LABEL_W;
    const [v0, v1] = this.currentView();
    const at = v0 + (x / this.plotW()) * (v1 - v0);
    const f = Math.exp(e.deltaY * 0.002);
    const span = Math.max((v1 - v0) * f, 1e-4);
    const frac = (at - v0) / (v1 - v0);
    this.view = [at - frac * span, at + (1 - frac) * span];
    this.draw();
  }

  /** Zooms by a factor around the cursor (buttons); 0 resets. */
  zoom(f) {
    if (f === 0) {
      this.view = null;
    } else {
      const [v0, v1] = this.currentView();
      const mid = this.k > 0 ? this.axis.toV(this.rec.events[Math.min(this.k, this.rec.events.length) - 1].t) : (v0 + v1) / 2;
      const span = (v1 - v0) * f;
      this.view = [mid - span / 2, mid + span / 2];
    }
    this.draw();
  }
}

/** Half the width of the diamond an attempt that took no time is drawn as. */
const MARK_R = 5;

/** Whether an attempt took no time (a reused call's duration is 0): a diamond, not a bar. */
function isInstant(tr) {
  return tr.outcome === 'reused' || tr.duration === 0;
}

function clip(ctx, text, w) {
  if (ctx.measureText(text).width <= w) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(`${t}…`).width > w) t = t.slice(0, -1);
  return `${t}…`;
}
