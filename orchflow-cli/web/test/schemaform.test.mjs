// The schema-form builder: schemars-style schemas to fields, raw inputs to the answer's JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formModel, collect, initialRaw, answerText } from '../src/schemaform.js';

test('a plain string answer is JSON text of the string', () => {
  const f = formModel({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'String', type: 'string' });
  assert.equal(f.kind, 'string');
  assert.equal(initialRaw(f), '');
  assert.deepEqual(answerText(f, 'yes'), { text: '"yes"', errors: [] });
});

test('an object as schemars writes a struct: required, Option, enum, integer, bool, Vec', () => {
  const schema = {
    title: 'Review',
    type: 'object',
    required: ['approve', 'score', 'tags', 'channel'],
    properties: {
      approve: { type: 'boolean', description: 'publish it?' },
      score: { type: 'integer', format: 'uint8', minimum: 0, maximum: 10 },
      note: { type: ['string', 'null'] },
      channel: { $ref: '#/$defs/Channel' },
      tags: { type: 'array', items: { type: 'string' } },
      ratio: { type: 'number' },
    },
    $defs: { Channel: { type: 'string', enum: ['blog', 'newsletter'] } },
  };
  const f = formModel(schema);
  assert.equal(f.kind, 'object');
  const kinds = Object.fromEntries(f.fields.map((x) => [x.name, [x.field.kind, x.required, x.field.nullable]]));
  assert.deepEqual(kinds, {
    approve: ['boolean', true, false],
    score: ['integer', true, false],
    note: ['string', false, true],
    channel: ['enum', true, false],
    tags: ['array', true, false],
    ratio: ['number', false, false],
  });
  const raw = { approve: true, score: '7', note: '', channel: '1', tags: ['a', 'b'], ratio: '' };
  const c = collect(f, raw);
  assert.deepEqual(c.errors, []);
  // The optional number left empty is left out; the nullable optional string left empty too.
  assert.deepEqual(c.value, { approve: true, score: 7, channel: 'newsletter', tags: ['a', 'b'] });
  assert.equal(answerText(f, raw).text, '{"approve":true,"score":7,"channel":"newsletter","tags":["a","b"]}');
});

test('bad numbers, out-of-range values and missing choices are errors with their path', () => {
  const f = formModel({
    type: 'object',
    required: ['n', 'k', 'pick'],
    properties: { n: { type: 'integer', minimum: 1 }, k: { type: 'number', exclusiveMaximum: 1 }, pick: { enum: ['a', 'b'] } },
  });
  const c = collect(f, { n: '2.5', k: '1', pick: '' });
  assert.deepEqual(c.errors.map((e) => e.path), ['n', 'k', 'pick']);
  assert.match(c.errors[0].message, /whole number/);
  assert.match(c.errors[1].message, /less than 1/);
  assert.equal(collect(f, { n: 'abc', k: '0.5', pick: '0' }).errors[0].message, '"abc" is not a number');
  assert.equal(collect(f, { n: '0', k: '0.5', pick: '0' }).errors[0].message, 'must be at least 1');
  assert.equal(answerText(f, { n: '', k: '0', pick: '0' }).text, null);
});

test('oneOf of consts (a documented Rust enum) is a choice; anyOf with null is nullable', () => {
  const f = formModel({
    oneOf: [
      { description: 'Ship it', type: 'string', const: 'approve' },
      { description: 'Send back', type: 'string', const: 'reject' },
    ],
  });
  assert.equal(f.kind, 'enum');
  assert.deepEqual(f.options.map((o) => [o.value, o.label]), [['approve', 'Ship it'], ['reject', 'Send back']]);
  assert.equal(collect(f, '1').value, 'reject');
  const g = formModel({ anyOf: [{ $ref: '#/definitions/Size' }, { type: 'null' }], definitions: { Size: { type: 'integer' } } });
  assert.equal(g.kind, 'integer');
  assert.equal(g.nullable, true);
  assert.equal(collect(g, '').value, null);
  assert.equal(collect(g, '3').value, 3);
});

test('nested objects, optional booleans, defaults, and arrays of numbers', () => {
  const f = formModel({
    type: 'object',
    required: ['who'],
    properties: {
      who: { type: 'object', required: ['name'], properties: { name: { type: 'string', default: 'ann' }, age: { type: 'integer' } } },
      urgent: { type: 'boolean' },
      sizes: { type: 'array', items: { type: 'number' }, minItems: 1 },
    },
  });
  const raw = initialRaw(f);
  assert.deepEqual(raw, { who: { name: 'ann', age: '' }, urgent: '', sizes: [] });
  const c = collect(f, { ...raw, sizes: ['1.5', 'x'] });
  assert.deepEqual(c.errors.map((e) => e.path), ['sizes[1]']);
  const ok = collect(f, { ...raw, urgent: 'true', sizes: ['1.5'] });
  assert.deepEqual(ok.value, { who: { name: 'ann' }, urgent: true, sizes: [1.5] });
  assert.deepEqual(collect(f, raw).errors.map((e) => e.path), ['sizes']);
});

test('what the form cannot draw is a JSON text field that must parse', () => {
  const f = formModel({ type: 'object', properties: { anything: {}, pair: { type: 'array', items: [{ type: 'string' }, { type: 'integer' }] }, deep: { type: 'array', items: { type: 'object', properties: { a: { type: 'string' } } } } }, required: ['anything'] });
  const kinds = f.fields.map((x) => x.field.kind);
  assert.deepEqual(kinds, ['json', 'json', 'json']);
  assert.deepEqual(collect(f, { anything: '{"a": [1]}', pair: '["x", 1]', deep: '' }).value, { anything: { a: [1] }, pair: ['x', 1] });
  assert.match(collect(f, { anything: '{oops', pair: '', deep: '' }).errors[0].message, /^not JSON/);
  assert.match(collect(f, { anything: '', pair: '', deep: '' }).errors[0].message, /required/);
  // A reference that leads nowhere, and a recursive type, do not hang or throw.
  assert.equal(formModel({ $ref: '#/$defs/Missing' }).kind, 'json');
  const rec = formModel({ $ref: '#/$defs/Node', $defs: { Node: { type: 'object', properties: { next: { $ref: '#/$defs/Node' } } } } });
  assert.equal(rec.kind, 'object');
});

test('string constraints: length and pattern', () => {
  const f = formModel({ type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$' });
  assert.deepEqual(collect(f, 'abc').errors, []);
  assert.equal(collect(f, 'a').errors[0].message, 'at least 2 characters');
  assert.equal(collect(f, 'ABC').errors[0].message, 'must match ^[a-z]+$');
  assert.equal(collect(formModel({ type: 'string', pattern: '(' }), 'x').errors.length, 0);
});
