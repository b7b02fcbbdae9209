// The orchflow viewer: a single page with hash routes
//   #/runs[?flow=&status=&since=&q=]   the runs list
//   #/run/<id>                         one run (graph, timeline, events, scrubber, live)
//   #/inbox                            questions waiting for a person
//   #/bundle                           open an exported bundle, no server needed
// When /api/info says `bundle: true` (the server shows one exported bundle), the app opens
// that run.

import { h, mount } from './dom.js';
import { api } from './api.js';
import { RunsPage } from './runs.js';
import { RunView } from './runview.js';
import { InboxPage } from './inbox.js';
import { BundlePage, checkBundle } from './bundle.js';

const app = document.getElementById('app');
let current = null;
let info = null;
let openedBundle = null;

const navLinks = {
  runs: h('a', { href: '#/runs', 'data-testid': 'nav-runs' }, 'Runs'),
  inbox: h('a', { href: '#/inbox', 'data-testid': 'nav-inbox' }, 'Inbox', h('span', { class: 'nav-count', 'data-testid': 'inbox-count', hidden: true })),
  bundle: h('a', { href: '#/bundle', 'data-testid': 'nav-bundle' }, 'Open bundle'),
};
const storeEl = h('span', { class: 'store muted small', 'data-testid': 'store' });
const outlet = h('main', { id: 'outlet' });
mount(app,
  h('nav', { class: 'topbar' },
    h('a', { href: '#/runs', class: 'brand' }, h('span', { class: 'logo' }, '◆'), 'orchflow'),
    navLinks.runs, navLinks.inbox, navLinks.bundle,
    h('span', { class: 'grow' }),
    storeEl),
  outlet);

function setInboxCount(n) {
  const el = navLinks.inbox.querySelector('.nav-count');
  el.hidden = !n;
  el.textContent = String(n);
}

function route() {
  if (current && current.dispose) current.dispose();
  current = null;
  const hash = location.hash || '#/runs';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  for (const [k, a] of Object.entries(navLinks)) a.classList.toggle('active', parts[0] === k || (k === 'runs' && parts[0] === 'run'));
  const root = h('div', { class: 'page' });
  mount(outlet, root);
  if (parts[0] === 'run' && parts[1]) {
    const id = decodeURIComponent(parts[1]);
    const at = params.has('at') ? Number(params.get('at')) : null;
    if (openedBundle && openedBundle.bundle.document.run_id === id && (!info || info.bundle !== true)) {
      current = new RunView(root, { kind: 'bundle', bundle: openedBundle.bundle, fileName: openedBundle.fileName, at });
    } else {
      current = new RunView(root, { kind: 'api', id, at }, info);
    }
    document.title = `run ${id.slice(0, 8)} · orchflow`;
  } else if (parts[0] === 'inbox') {
    current = new InboxPage(root, { onCount: setInboxCount });
    document.title = 'inbox · orchflow';
  } else if (parts[0] === 'bundle') {
    current = new BundlePage(root, { onOpen: openBundle });
    document.title = 'open a bundle · orchflow';
  } else {
    current = new RunsPage(root, params);
    document.title = 'runs · orchflow';
  }
  Promise.resolve(current.start()).catch((e) => {
    mount(root, h('p', { class: 'err pad' }, String(e && e.message ? e.message : e)));
  });
}

/** Shows a bundle's run (no server calls). */
function openBundle(bundle, fileName) {
  openedBundle = { bundle, fileName };
  if (current && current.dispose) current.dispose();
  const r = h('div', { class: 'page' });
  mount(outlet, r);
  current = new RunView(r, { kind: 'bundle', bundle, fileName });
  current.start();
  document.title = `bundle ${fileName} · orchflow`;
}

// A bundle dropped anywhere opens (the bundle page has its own drop zone).
window.addEventListener('dragover', (e) => {
  if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
});
window.addEventListener('drop', async (e) => {
  const f = e.dataTransfer?.files?.[0];
  if (!f || e.defaultPrevented) return;
  e.preventDefault();
  try {
    const b = JSON.parse(await f.text());
    const problem = checkBundle(b);
    if (problem) throw new Error(problem);
    openBundle(b, f.name);
  } catch (x) {
    window.alert(`${f.name}: ${x.message}`);
  }
});

async function boot() {
  // The server turned ?token= into a cookie; keep the token out of the address bar and history.
  if (new URLSearchParams(location.search).has('token')) {
    history.replaceState(null, '', `${location.pathname}${location.hash}`);
  }
  // An explicit route starts at once; the runs list waits for /api/info (a bundle server
  // opens its run instead).
  const explicit = /^#\/(run\/|inbox|bundle)/.test(location.hash);
  if (explicit) {
    window.addEventListener('hashchange', route);
    route();
  }
  try {
    info = await api.info();
  } catch (e) {
    info = null;
    storeEl.textContent = e.status === 0 ? `no server (${e.message}); bundles still open` : `/api/info: ${e.message}`;
  }
  if (info) {
    storeEl.textContent = `${info.bundle ? '' : 'store '}${info.store ?? ''} · v${info.version ?? '?'}`;
    storeEl.title = info.live ? 'live updates on' : 'live updates off';
    if (info.bundle) {
      navLinks.inbox.hidden = true;
      let id = typeof info.run_id === 'string' ? info.run_id : null;
      if (!id) {
        try {
          const res = await api.runs({ limit: 1 });
          id = res.runs?.[0]?.run_id ?? null;
        } catch {
          id = null;
        }
      }
      if (id && !location.hash.startsWith('#/run/')) {
        history.replaceState(null, '', `#/run/${encodeURIComponent(id)}`);
        if (explicit) route();
      } else if (explicit && current instanceof RunView) {
        current.setReadOnly();
      }
    } else {
      api.questions().then((q) => setInboxCount(Array.isArray(q) ? q.length : 0), () => {});
    }
  }
  if (explicit && info && current instanceof RunView) current.setInfo(info);
  if (!explicit) {
    window.addEventListener('hashchange', route);
    route();
  }
}

boot();
