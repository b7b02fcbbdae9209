// Answer forms made from a question's JSON Schema (as schemars writes it), in two halves:
//
// * `formModel(schema)` turns a schema into a tree of fields, and `collect(field, raw)` turns
//   what the inputs hold (`raw`, see below) into the JSON value to send, with every problem
//   found. Both are pure (node tests them).
// * `renderForm(field)` builds the inputs in the page and reads them back as `raw`.
//
// Supported: string, number, integer, boolean, enum (and oneOf/anyOf of consts), object with
// properties, array of simple items, nullable types (`["string", "null"]`, `anyOf [X, null]`),
// `$ref` into `$defs`/`definitions`, `allOf` of one schema. Anything else is a JSON text field
// whose text must parse. Raw values: string → text; number/integer → text; boolean → true,
// false or "" (unset, for an optional boolean); enum → the option's index as text or ""; json →
// text; object → {name: raw}; array → [raw…].
//
// Empty inputs: an optional property (not in `required`) left empty is left out of the object;
// a nullable value left empty is null; a required string left empty is ""; a required number,
// enum or JSON value left empty is an error.

const SIMPLE = new Set(['string', 'number', 'integer', 'boolean', 'enum']);

function resolveRef(root, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return null;
  let cur = root;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!cur || typeof cur !== 'object' || !(part in cur)) return null;
    cur = cur[part];
  }
  return cur && typeof cur === 'object' ? cur : null;
}

function isNullSchema(s) {
  return s && typeof s === 'object' && (s.type === 'null' || (s.const === null && Object.keys(s).length <= 2));
}

function constOf(s) {
  if (!s || typeof s !== 'object') return undefined;
  if ('const' in s) return { value: s.const };
  if (Array.isArray(s.enum) && s.enum.length === 1) return { value: s.enum[0] };
  return undefined;
}

function optionLabel(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The field tree of a schema. `root` is the whole schema document (for `$ref`); `depth`
 * guards recursive types (past 8 levels a field becomes JSON text).
 */
export function formModel(schema, root = schema, depth = 0) {
  const base = (kind, s, extra = {}) => ({
    kind,
    label: s?.title ?? null,
    description: s?.description ?? null,
    default: s?.default,
    nullable: false,
    ...extra,
  });
  if (schema === true || schema == null || (typeof schema === 'object' && Object.keys(schema).length === 0)) {
    return base('json', {});
  }
  if (typeof schema !== 'object' || depth > 8) return base('json', {});
  let s = schema;
  // References and single allOf.
  for (let guard = 0; guard < 16; guard++) {
    if (s.$ref) {
      const target = resolveRef(root, s.$ref);
      if (!target) return base('json', s);
      const { $ref, ...rest } = s;
      void $ref;
      s = { ...target, ...rest };
      continue;
    }
    if (Array.isArray(s.allOf) && s.allOf.length === 1 && !s.type && !s.properties) {
      const { allOf, ...rest } = s;
      s = { ...allOf[0], ...rest };
      continue;
    }
    break;
  }
  // Nullable through anyOf/oneOf with null.
  for (const key of ['anyOf', 'oneOf']) {
    const alts = s[key];
    if (!Array.isArray(alts)) continue;
    const nonNull = alts.filter((a) => !isNullSchema(a));
    const hasNull = nonNull.length < alts.length;
    if (nonNull.length === 1) {
      const { [key]: _, ...rest } = s;
      void _;
      const inner = formModel({ ...nonNull[0], ...rest }, root, depth + 1);
      inner.nullable = inner.nullable || hasNull;
      if (s.title && !inner.label) inner.label = s.title;
      if (s.description && !inner.description) inner.description = s.description;
      return inner;
    }
    const consts = nonNull.map(constOf);
    if (nonNull.length > 0 && consts.every((c) => c !== undefined)) {
      return base('enum', s, {
        nullable: hasNull,
        options: consts.map((c, i) => ({ value: c.value, label: nonNull[i].title ?? nonNull[i].description ?? optionLabel(c.value) })),
      });
    }
    return base('json', s, { nullable: hasNull });
  }
  let types = Array.isArray(s.type) ? s.type.slice() : s.type ? [s.type] : [];
  let nullable = false;
  if (types.includes('null')) {
    nullable = true;
    types = types.filter((t) => t !== 'null');
  }
  if (Array.isArray(s.enum)) {
    const values = s.enum.filter((v) => v !== null);
    return base('enum', s, {
      nullable: nullable || values.length < s.enum.length,
      options: values.map((v) => ({ value: v, label: optionLabel(v) })),
    });
  }
  if ('const' in s) return base('const', s, { value: s.const, nullable });
  if (types.length === 0 && s.properties) types = ['object'];
  if (types.length !== 1) return base('json', s, { nullable });
  const type = types[0];
  switch (type) {
    case 'string':
      return base('string', s, {
        nullable,
        minLength: s.minLength,
        maxLength: s.maxLength,
        pattern: s.pattern,
        format: s.format,
        multiline: (s.maxLength ?? 0) > 200 || s.format === 'textarea',
      });
    case 'number':
    case 'integer':
      return base(type, s, {
        nullable,
        min: s.minimum ?? (typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum : undefined),
        max: s.maximum ?? (typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum : undefined),
        exclusiveMin: typeof s.exclusiveMinimum === 'number',
        exclusiveMax: typeof s.exclusiveMaximum === 'number',
      });
    case 'boolean':
      return base('boolean', s, { nullable });
    case 'object': {
      if (!s.properties || typeof s.properties !== 'object') return base('json', s, { nullable });
      const required = new Set(Array.isArray(s.required) ? s.required : []);
      const fields = Object.entries(s.properties).map(([name, sub]) => {
        const f = formModel(sub, root, depth + 1);
        return { name, required: required.has(name), field: f };
      });
      return base('object', s, { nullable, fields });
    }
    case 'array': {
      const itemSchema = Array.isArray(s.items) ? null : s.items;
      const item = itemSchema ? formModel(itemSchema, root, depth + 1) : null;
      if (!item || !SIMPLE.has(item.kind)) return base('json', s, { nullable });
      return base('array', s, { nullable, item, minItems: s.minItems, maxItems: s.maxItems });
    }
    default:
      return base('json', s, { nullable });
  }
}

/** An empty raw value for a field (what a fresh form holds), from its default when it has one. */
export function initialRaw(field, required = true) {
  const d = field.default;
  switch (field.kind) {
    case 'string':
      return typeof d === 'string' ? d : '';
    case 'number':
    case 'integer':
      return typeof d === 'number' ? String(d) : '';
    case 'boolean':
      return typeof d === 'boolean' ? d : required && !field.nullable ? false : '';
    case 'enum': {
      const i = d === undefined ? -1 : field.options.findIndex((o) => JSON.stringify(o.value) === JSON.stringify(d));
      return i >= 0 ? String(i) : '';
    }
    case 'object': {
      const out = {};
      for (const f of field.fields) out[f.name] = initialRaw(f.field, f.required);
      return out;
    }
    case 'array':
      return Array.isArray(d) ? d.map((v) => initialRaw({ ...field.item, default: v })) : [];
    case 'const':
      return '';
    default:
      return d === undefined ? '' : JSON.stringify(d, null, 2);
  }
}

/**
 * The JSON value of a field's raw input: `{value, omit, errors: [{path, message}]}`.
 * `required` says whether an empty input is an error (or "" for strings) rather than left out.
 */
export function collect(field, raw, path = '', required = true) {
  const errors = [];
  const where = path || 'answer';
  const empty = { value: undefined, omit: true, errors };
  const nothing = () => {
    if (!required) return empty;
    if (field.nullable) return { value: null, omit: false, errors };
    return null;
  };
  switch (field.kind) {
    case 'const':
      return { value: field.value, omit: false, errors };
    case 'string': {
      const text = typeof raw === 'string' ? raw : raw == null ? '' : String(raw);
      if (text === '') {
        const n = nothing();
        if (n) return n;
      }
      if (field.minLength != null && text.length < field.minLength) errors.push({ path: where, message: `at least ${field.minLength} characters` });
      if (field.maxLength != null && text.length > field.maxLength) errors.push({ path: where, message: `at most ${field.maxLength} characters` });
      if (field.pattern) {
        try {
          if (!new RegExp(field.pattern, 'u').test(text)) errors.push({ path: where, message: `must match ${field.pattern}` });
        } catch {
          // A pattern JavaScript cannot read is left to the server's check.
        }
      }
      return { value: text, omit: false, errors };
    }
    case 'number':
    case 'integer': {
      const text = typeof raw === 'string' ? raw.trim() : raw == null ? '' : String(raw);
      if (text === '') {
        const n = nothing();
        if (n) return n;
        errors.push({ path: where, message: 'a number is required' });
        return { value: undefined, omit: true, errors };
      }
      const v = Number(text);
      if (!Number.isFinite(v) || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
        errors.push({ path: where, message: `${JSON.stringify(text)} is not a number` });
        return { value: undefined, omit: true, errors };
      }
      if (field.kind === 'integer' && !Number.isInteger(v)) errors.push({ path: where, message: 'must be a whole number' });
      if (field.min != null && (field.exclusiveMin ? v <= field.min : v < field.min)) errors.push({ path: where, message: `must be ${field.exclusiveMin ? 'more than' : 'at least'} ${field.min}` });
      if (field.max != null && (field.exclusiveMax ? v >= field.max : v > field.max)) errors.push({ path: where, message: `must be ${field.exclusiveMax ? 'less than' : 'at most'} ${field.max}` });
      return { value: v, omit: false, errors };
    }
    case 'boolean': {
      if (raw === true || raw === 'true') return { value: true, omit: false, errors };
      if (raw === false || raw === 'false') return { value: false, omit: false, errors };
      const n = nothing();
      if (n) return n;
      return { value: false, omit: false, errors };
    }
    case 'enum': {
      const text = raw == null ? '' : String(raw);
      if (text === '') {
        const n = nothing();
        if (n) return n;
        errors.push({ path: where, message: 'choose one' });
        return { value: undefined, omit: true, errors };
      }
      const opt = field.options[Number(text)];
      if (!opt) {
        errors.push({ path: where, message: 'choose one' });
        return { value: undefined, omit: true, errors };
      }
      return { value: opt.value, omit: false, errors };
    }
    case 'object': {
      const obj = {};
      const r = raw && typeof raw === 'object' ? raw : {};
      for (const f of field.fields) {
        const c = collect(f.field, r[f.name], path ? `${path}.${f.name}` : f.name, f.required);
        errors.push(...c.errors);
        if (!c.omit) obj[f.name] = c.value;
      }
      return { value: obj, omit: false, errors };
    }
    case 'array': {
      const list = Array.isArray(raw) ? raw : [];
      const out = [];
      list.forEach((item, i) => {
        const c = collect(field.item, item, `${where}[${i}]`, true);
        errors.push(...c.errors);
        if (!c.omit) out.push(c.value);
      });
      if (field.minItems != null && out.length < field.minItems) errors.push({ path: where, message: `at least ${field.minItems} items` });
      if (field.maxItems != null && out.length > field.maxItems) errors.push({ path: where, message: `at most ${field.maxItems} items` });
      return { value: out, omit: false, errors };
    }
    default: {
      const text = typeof raw === 'string' ? raw.trim() : '';
      if (text === '') {
        const n = nothing();
        if (n) return n;
        errors.push({ path: where, message: 'a JSON value is required' });
        return { value: undefined, omit: true, errors };
      }
      try {
        return { value: JSON.parse(text), omit: false, errors };
      } catch (e) {
        errors.push({ path: where, message: `not JSON: ${e.message}` });
        return { value: undefined, omit: true, errors };
      }
    }
  }
}

/**
 * The text to answer with: for a schema question, the JSON text of the form's value; errors
 * when the value does not fit the schema as far as the form can tell.
 */
export function answerText(field, raw) {
  const c = collect(field, raw, '', true);
  if (c.errors.length) return { text: null, errors: c.errors };
  return { text: JSON.stringify(c.omit ? null : c.value), errors: [] };
}
