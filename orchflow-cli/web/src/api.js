// The server's JSON API (see notes/viewer-contract.md): every call sends the page's cookies
// (the token cookie) and turns a non-2xx answer into an Error carrying the server's message.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : text.trim() || res.statusText;
    const hint = res.status === 401 && !msg.includes('token=') ? ' (open the page once as /?token=<token> to sign in)' : '';
    throw new ApiError(res.status, `${res.status} ${msg}${hint}`);
  }
  if (data === null && text) throw new ApiError(res.status, `the server answered with something that is not JSON: ${text.slice(0, 200)}`);
  return data;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

export const api = {
  info: () => call('GET', '/api/info'),
  runs: (params) => call('GET', `/api/runs${qs(params)}`),
  run: (id) => call('GET', `/api/runs/${enc(id)}`),
  journal: (id, after = 0) => call('GET', `/api/runs/${enc(id)}/journal${qs({ after })}`),
  questions: (params = {}) => call('GET', `/api/questions${qs(params)}`),
  answer: (id, question, text) => call('POST', `/api/runs/${enc(id)}/answer`, { question, text }),
  resume: (id) => call('POST', `/api/runs/${enc(id)}/resume`, {}),
  cancel: (id) => call('POST', `/api/runs/${enc(id)}/cancel`, {}),
  replay: (id, reexecute = []) => call('GET', `/api/runs/${enc(id)}/replay${qs({ reexecute: reexecute.join(',') })}`),
  forkPreview: (id, body) => call('POST', `/api/runs/${enc(id)}/fork/preview`, body),
  fork: (id, body) => call('POST', `/api/runs/${enc(id)}/fork`, body),
  exportUrl: (id) => `/api/runs/${enc(id)}/export`,
  eventsUrl: (id, after) => `/api/runs/${enc(id)}/events${qs({ after })}`,
};
