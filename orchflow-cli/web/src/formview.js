// The inputs of a schema form (see schemaform.js for the field tree and how values are read).
// `renderForm(field)` returns {el, read()}: the inputs, and a function giving their raw value.
// Every input has data-testid="answer-field" and data-path (dotted path, "" for the root).

import { h } from './dom.js';
import { initialRaw } from './schemaform.js';

let uid = 0;

export function renderForm(field) {
  return renderField(field, '', true, initialRaw(field), null);
}

function labelOf(name, field) {
  return field.label || name || 'answer';
}

function renderField(field, path, required, raw, name) {
  const id = `f${++uid}`;
  // A schema of one simple value (a string, a number…) is answered in one input: the same
  // hook as a plain question's.
  const testid = path === '' && field.kind !== 'object' && field.kind !== 'array' ? 'answer-input' : 'answer-field';
  const common = { id, 'data-testid': testid, 'data-path': path, 'data-kind': field.kind };
  const wrap = (input, read, extra = null) => {
    const el = h('div', { class: `ff ff-${field.kind}` },
      h('label', { for: id }, labelOf(name, field), required ? null : h('span', { class: 'muted small' }, ' (optional)'), field.nullable ? h('span', { class: 'muted small' }, ' (empty = null)') : null),
      field.description ? h('div', { class: 'muted small ff-desc' }, field.description) : null,
      input, extra);
    return { el, read };
  };
  switch (field.kind) {
    case 'string': {
      const input = field.multiline
        ? h('textarea', { ...common, rows: 3, value: raw })
        : h('input', { ...common, type: field.format === 'email' ? 'email' : 'text', value: raw, placeholder: field.format ?? '' });
      return wrap(input, () => input.value);
    }
    case 'number':
    case 'integer': {
      const input = h('input', { ...common, type: 'text', inputmode: field.kind === 'integer' ? 'numeric' : 'decimal', value: raw, placeholder: field.kind });
      return wrap(input, () => input.value);
    }
    case 'boolean': {
      if (required && !field.nullable) {
        const input = h('input', { ...common, type: 'checkbox', checked: raw === true });
        const el = h('div', { class: 'ff ff-boolean' },
          h('label', { class: 'ff-check' }, input, ' ', labelOf(name, field)),
          field.description ? h('div', { class: 'muted small ff-desc' }, field.description) : null);
        return { el, read: () => input.checked };
      }
      const input = h('select', { ...common },
        h('option', { value: '' }, field.nullable ? 'null' : '(unset)'),
        h('option', { value: 'true', selected: raw === true }, 'true'),
        h('option', { value: 'false', selected: raw === false }, 'false'));
      return wrap(input, () => input.value);
    }
    case 'enum': {
      const input = h('select', { ...common },
        h('option', { value: '' }, field.nullable ? 'null' : required ? 'choose…' : '(unset)'),
        field.options.map((o, i) => h('option', { value: String(i), selected: raw === String(i) }, o.label)));
      return wrap(input, () => input.value);
    }
    case 'const':
      return wrap(h('code', { ...common }, JSON.stringify(field.value)), () => '');
    case 'object': {
      const parts = field.fields.map((f) => ({ name: f.name, ...renderField(f.field, path ? `${path}.${f.name}` : f.name, f.required, raw?.[f.name] ?? initialRaw(f.field, f.required), f.name) }));
      const el = h('fieldset', { class: 'ff ff-object', 'data-testid': 'answer-field', 'data-path': path, 'data-kind': 'object' },
        path || field.label ? h('legend', null, labelOf(name, field)) : null,
        field.description ? h('div', { class: 'muted small ff-desc' }, field.description) : null,
        parts.map((p) => p.el));
      return {
        el,
        read: () => Object.fromEntries(parts.map((p) => [p.name, p.read()])),
      };
    }
    case 'array': {
      const items = [];
      const list = h('div', { class: 'ff-list' });
      const add = (r) => {
        const i = items.length;
        const part = renderField(field.item, `${path}[${i}]`, true, r ?? initialRaw(field.item), `#${i + 1}`);
        const row = h('div', { class: 'ff-item' }, part.el, h('button', { type: 'button', class: 'btn small', title: 'remove', onclick: () => {
          const at = items.indexOf(entry);
          if (at >= 0) items.splice(at, 1);
          row.remove();
        } }, '×'));
        const entry = { read: part.read, row };
        items.push(entry);
        list.append(row);
      };
      for (const r of Array.isArray(raw) ? raw : []) add(r);
      const el = h('fieldset', { class: 'ff ff-array', 'data-testid': 'answer-field', 'data-path': path, 'data-kind': 'array' },
        h('legend', null, labelOf(name, field)),
        list,
        h('button', { type: 'button', class: 'btn small', 'data-testid': 'answer-add-item', onclick: () => add() }, '+ add'));
      return { el, read: () => items.map((it) => it.read()) };
    }
    default: {
      const input = h('textarea', { ...common, rows: 4, class: 'mono', value: raw, placeholder: 'JSON' });
      return wrap(input, () => input.value);
    }
  }
}
