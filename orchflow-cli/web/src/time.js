// Times and durations as orchflow's JSON writes them, and as the page shows them.
//
// An instant is RFC 3339 text with up to nanoseconds ("2026-12-03T05:20:01.123456789Z"), or the
// legacy serde shape {secs_since_epoch, nanos_since_epoch}. Inside the page an instant is a
// number of milliseconds since the epoch with a fraction (microsecond resolution survives in a
// double at today's dates), so that times sort and subtract as plain numbers.

const RFC3339 = /^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?$/;
// Whole seconds repeat across a run's thousands of instants: parse each once.
const wholeCache = new Map();

/** Milliseconds since the epoch of an orchflow instant, or NaN when it is not one. */
export function parseTime(v) {
  if (typeof v === 'string') {
    const m = RFC3339.exec(v.trim());
    if (!m) return NaN;
    let tz = m[4] || 'Z';
    if (tz === 'z') tz = 'Z';
    if (tz.length === 5) tz = tz.slice(0, 3) + ':' + tz.slice(3);
    const key = `${m[1]}T${m[2]}${tz}`;
    let whole = wholeCache.get(key);
    if (whole === undefined) {
      whole = Date.parse(key);
      if (wholeCache.size > 50_000) wholeCache.clear();
      wholeCache.set(key, whole);
    }
    if (Number.isNaN(whole)) return NaN;
    const frac = m[3] ? Number('0.' + m[3]) * 1000 : 0;
    return whole + frac;
  }
  if (v && typeof v === 'object' && typeof v.secs_since_epoch === 'number') {
    return v.secs_since_epoch * 1000 + (v.nanos_since_epoch || 0) / 1e6;
  }
  return NaN;
}

/** A duration in milliseconds as short text: 850 µs, 12.3 ms, 4.05 s, 3m 04s, 2h 05m, 3d 4h. */
export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '–';
  const neg = ms < 0;
  const a = Math.abs(ms);
  let s;
  if (a < 1) s = `${Math.round(a * 1000)} µs`;
  else if (a < 10) s = `${a.toFixed(2)} ms`;
  else if (a < 1000) s = `${a.toFixed(a < 100 ? 1 : 0)} ms`;
  else if (a < 60_000) s = `${(a / 1000).toFixed(a < 10_000 ? 2 : 1)} s`;
  else if (a < 3_600_000) {
    const m = Math.floor(a / 60_000);
    s = `${m}m ${String(Math.floor((a % 60_000) / 1000)).padStart(2, '0')}s`;
  } else if (a < 86_400_000) {
    const h = Math.floor(a / 3_600_000);
    s = `${h}h ${String(Math.floor((a % 3_600_000) / 60_000)).padStart(2, '0')}m`;
  } else {
    const d = Math.floor(a / 86_400_000);
    s = `${d}d ${Math.floor((a % 86_400_000) / 3_600_000)}h`;
  }
  return neg ? `-${s}` : s;
}

/** A wall-clock instant (ms) as local "YYYY-MM-DD HH:MM:SS". */
export function fmtDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** How long ago `ms` was, relative to `now` (ms): "4s ago", "3m ago", "2h ago", "5d ago". */
export function fmtAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '–';
  const a = Math.max(0, now - ms) / 1000;
  if (a < 60) return `${Math.floor(a)}s ago`;
  if (a < 3600) return `${Math.floor(a / 60)}m ago`;
  if (a < 86400) return `${Math.floor(a / 3600)}h ago`;
  return `${Math.floor(a / 86400)}d ago`;
}

/** An offset from a run's start (ms) as "+12.3 ms". */
export function fmtOffset(ms) {
  return Number.isFinite(ms) ? `+${fmtDuration(ms)}` : '–';
}
