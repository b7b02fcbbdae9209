// Replay and fork, the pure part (no DOM): the call a recorded attempt belongs to (`step@n`,
// numbered the way the library's `locate` numbers them), what a replay report says in plain
// words, what a fork preview does with each call, the lineage of a run, and the fork request
// built from the input editor's text.
//
// Invariants:
// * `callNumbers` sees the traces in journal order (entries by seq, each entry's traces in
//   order), as the library's `Recording` does, so `step@n` here names the same call there;
// * the views returned here are plain data (strings, booleans, arrays); the DOM side only lays
//   them out, so that everything a user reads is tested here.

/**
 * Whether a recorded attempt succeeded (older traces may lack `success`): a call a fork reused
 * from the recorded run (`reused`) succeeded too, as the library counts it.
 */
function succeeded(t) {
  const raw = t.raw;
  if (raw && typeof raw.success === 'boolean') return raw.success;
  return t.outcome === 'succeeded' || t.outcome === 'reused';
}

/** The place of an attempt: (parent, node, map item), as the library keys calls. */
function placeOf(t) {
  return JSON.stringify([t.parent ?? null, t.node ?? '', t.item ?? null]);
}

/**
 * The call each attempt belongs to: an array parallel to `traces` of
 * `{step, occurrence, spec: "step@n", trace: index of the attempt that stands for the call}`,
 * or `null` for an attempt that belongs to no call (a cancelled attempt whose call was never
 * made again).
 *
 * The calls of a step are, in the order of the attempt standing for each: its successful
 * attempts (a call a fork reused from the recorded run included), and a last unsuccessful attempt at a place with no success after it (a failed or
 * suspended call, counted once however many attempts it took). A failed attempt that a later
 * attempt retried belongs to the same call as the retry; a cancelled attempt belongs to the call
 * made at its place next, if one was.
 */
export function callNumbers(traces) {
  const successes = new Map(); // place → successful calls so far
  const calls = new Map(); // "place#ordinal" → index of the attempt standing for the call
  const callOf = new Array(traces.length); // attempt → "place#ordinal"
  for (let i = 0; i < traces.length; i++) {
    const t = traces[i];
    const place = placeOf(t);
    const n = successes.get(place) ?? 0;
    const id = `${place}#${n}`;
    callOf[i] = id;
    if (succeeded(t)) {
      // A re-inserted call moves to the end (the library removes and pushes it).
      calls.delete(id);
      calls.set(id, i);
      successes.set(place, n + 1);
    } else if (t.outcome !== 'cancelled') {
      calls.delete(id);
      calls.set(id, i);
    }
  }
  // Number each step's calls in the order of their standing attempts.
  const standing = [...calls.entries()].sort((a, b) => a[1] - b[1]);
  const perStep = new Map();
  const number = new Map(); // "place#ordinal" → {step, occurrence, spec, trace}
  for (const [id, i] of standing) {
    const step = traces[i].step;
    const occurrence = (perStep.get(step) ?? 0) + 1;
    perStep.set(step, occurrence);
    number.set(id, { step, occurrence, spec: `${step}@${occurrence}`, trace: i });
  }
  return callOf.map((id) => number.get(id) ?? null);
}

// ------------------------------------------------------------------------------ replay report

const KIND_TEXT = {
  step_changed: 'another step is called here',
  input_changed: 'the step is called with another input',
  not_recorded: 'the new code makes a call the recording does not have',
  not_called: 'the recording made a call the new code does not make',
  output_undecodable: 'the recorded output no longer reads back into the step’s output type',
  output_changed: 'a re-executed step returned another output',
  flow_output_changed: 'the run would complete with another output',
  failed: 'the new code stops where the recording did not',
};

/** The JSON of a value for display, or null when there is none. */
function jsonText(v) {
  return v === undefined ? null : JSON.stringify(v, null, 2);
}

/** A call (recorded or new) as the report shows it. */
export function callView(c) {
  if (!c || typeof c !== 'object') return null;
  const src = c.source && typeof c.source === 'object' ? `${c.source.file}:${c.source.line}:${c.source.column}` : null;
  return {
    step: String(c.step ?? '?'),
    path: String(c.path ?? ''),
    input: c.input === undefined ? null : jsonText(c.input),
    source: src,
  };
}

/** What the resume check says, in plain words. */
export function resumeView(r) {
  switch (r.resume) {
    case 'finished':
      return { kind: 'finished', ok: true, text: 'The run has finished: there is nothing to resume.' };
    case 'same_shape':
      return { kind: 'same_shape', ok: true, text: 'Can be resumed: it was recorded under the current build’s fingerprint (same shape).' };
    case 'declared':
      return { kind: 'declared', ok: true, text: `Can be resumed: the flow declares the recorded fingerprint compatible (${r.resume_reason ?? 'no reason given'}).` };
    case 'undeclared':
      return { kind: 'undeclared', ok: false, text: 'Cannot be resumed: it was recorded under another fingerprint, which the flow does not declare compatible (Flow::compatible_with).' };
    case 'undecodable':
      return { kind: 'undecodable', ok: false, text: `Cannot be resumed: its saved points do not read back into the new code’s state: ${r.resume_reason ?? 'no reason given'}` };
    default:
      return { kind: String(r.resume ?? 'unknown'), ok: false, text: `Resume check: ${r.resume ?? 'not given'}` };
  }
}

/**
 * A replay report (`GET /api/runs/{id}/replay`) as the panel shows it: the verdict in plain
 * words, the divergence (path, message, recorded and new call), where a compatible unfinished
 * run continues, and the resume check.
 */
export function reportView(r) {
  if (!r || typeof r !== 'object') return { verdict: 'unknown', title: 'The server sent no report.', facts: [], divergence: null, reason: null, continues: null, resume: null };
  const facts = [];
  facts.push(`recorded under ${r.recorded_fingerprint ?? '?'}, current build ${r.fingerprint ?? '?'}${r.recorded_fingerprint === r.fingerprint ? ' (same)' : ''}`);
  if (typeof r.reused === 'number') facts.push(`${r.reused} call${r.reused === 1 ? '' : 's'} answered from the recording`);
  if (r.reexecuted) facts.push(`${r.reexecuted} step${r.reexecuted === 1 ? '' : 's'} re-executed and matched`);
  const view = { verdict: r.outcome ?? 'unknown', title: '', facts, divergence: null, reason: null, continues: null, resume: resumeView(r) };
  // The library's resume check says whether the run has finished (a failed run has not: it
  // can be resumed).
  const unfinished = r.resume !== 'finished';
  switch (r.outcome) {
    case 'compatible': {
      view.title = 'Compatible: the current build makes every recorded call, in the same places, with the same inputs.';
      if (unfinished) {
        const next = Array.isArray(r.continues_at) ? r.continues_at.map(callView).filter(Boolean) : [];
        view.continues = next;
      }
      break;
    }
    case 'diverges':
      view.title = `Diverges at ${r.path}: ${r.message}`;
      view.divergence = {
        kind: r.kind ?? '',
        kindText: KIND_TEXT[r.kind] ?? String(r.kind ?? ''),
        path: String(r.path ?? ''),
        message: String(r.message ?? ''),
        recorded: callView(r.recorded),
        new: callView(r.new),
      };
      break;
    case 'unreplayable':
      view.title = `Cannot be replayed: ${r.reason ?? 'no reason given'}`;
      view.reason = String(r.reason ?? '');
      break;
    default:
      view.title = `Unknown outcome ${JSON.stringify(r.outcome)}`;
  }
  return view;
}

// ------------------------------------------------------------------------------ fork preview

const REUSE_TEXT = { reused: 'reused', rerun: 'runs again', new: 'new' };

/**
 * A fork preview (`POST …/fork/preview`) as a table: one row per call (step, path, what the
 * fork does with it, whether its side effects repeat, whether it is the fork's call), and a
 * one-line summary.
 */
export function previewRows(p) {
  const steps = Array.isArray(p?.steps) ? p.steps : [];
  const at = p?.at ?? null;
  const rows = steps.map((s) => {
    const c = s.call ?? {};
    return {
      step: String(c.step ?? '?'),
      path: String(c.path ?? ''),
      reuse: String(s.reuse ?? ''),
      label: REUSE_TEXT[s.reuse] ?? String(s.reuse ?? '?'),
      sideEffects: s.repeats_side_effects === true,
      isAt: !!at && c.step === at.step && c.path === at.path,
    };
  });
  const count = (k) => rows.filter((r) => r.reuse === k).length;
  const effects = rows.filter((r) => r.sideEffects).length;
  const parts = [`${count('reused')} reused`, `${count('rerun')} run again`, `${count('new')} new`];
  const summary = `${parts.join(', ')}${effects ? `; ${effects} call${effects === 1 ? '' : 's'} will repeat side effects` : ''}`;
  return { at: at ? { step: String(at.step ?? '?'), path: String(at.path ?? '') } : null, rows, summary };
}

/**
 * The body of a fork request from the editor's text: `{body}` or `{error}` (invalid JSON is
 * caught here, before anything is sent). Empty text, or text equal to the recorded input,
 * sends no input (the call keeps its recorded one).
 */
export function forkBody(spec, text, recorded) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return { body: { from: spec } };
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (e) {
    return { error: `the input is not valid JSON: ${e.message}` };
  }
  if (recorded !== undefined && canonical(value) === canonical(recorded)) return { body: { from: spec } };
  return { body: { from: spec, input: value } };
}

/** JSON with object keys sorted, for comparing values. */
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

// ------------------------------------------------------------------------------ lineage

/**
 * A run document's lineage as the header shows it: `{forkedFrom: {runId, spec, path, input,
 * note}, forks: [runId…]}` (`input`: the edited input as JSON text, or null; `note`: what the
 * fork's attempts marked reused are, given `reused`, how many the run has), or null when the
 * run is no fork and has none.
 */
export function lineageView(doc, reused = 0) {
  const l = doc?.lineage;
  if (!l || typeof l !== 'object') return null;
  const f = l.forked_from && typeof l.forked_from === 'object' ? l.forked_from : null;
  const forks = Array.isArray(l.forks) ? l.forks.map(String) : [];
  if (!f && !forks.length) return null;
  let forkedFrom = null;
  if (f) {
    const at = f.at && typeof f.at === 'object' ? f.at : {};
    forkedFrom = {
      runId: String(f.run_id ?? ''),
      spec: `${at.step ?? '?'}@${at.occurrence ?? 1}`,
      path: String(f.path ?? ''),
      input: f.input === undefined ? null : JSON.stringify(f.input),
      note: reusedNote(reused),
    };
  }
  return { forkedFrom, forks };
}

/** What a fork's reused attempts are, for the lineage line (`reused`: how many there are). */
function reusedNote(reused) {
  if (!(reused > 0)) return 'the calls before it take that run’s results: they show here as attempts marked reused once the fork runs';
  return `the ${reused} call${reused === 1 ? '' : 's'} before it took that run’s results: ${reused === 1 ? 'its attempt is' : 'their attempts are'} marked reused`;
}

/** Whether the build serving (`/api/info`'s `flows`) has the code of flow `name`. */
export function flowInBuild(info, name) {
  const flows = Array.isArray(info?.flows) ? info.flows : [];
  return flows.find((f) => f && f.name === name) ?? null;
}

/** Why replay and fork are off for a run of flow `name` (or null when they are on). */
export function whyNoReplay(info, name, { readOnly = false } = {}) {
  if (readOnly) return 'not available for a bundle: replay and fork need a server with the flow’s code';
  if (!info) return 'the server has not said which flows it was built with (/api/info)';
  if (flowInBuild(info, name)) return null;
  return `the server was started without the code of flow ${name}: build an app binary with orchflow_cli::App and register the flow to replay or fork its runs`;
}
