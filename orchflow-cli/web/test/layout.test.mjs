// The dagre layout of a flow graph: every node placed, containers around their children,
// branches and arms side by side in declaration order, the loop's repeat edge kept aside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { buildModel } from '../src/model.js';
import { layout } from '../src/layout.js';
import { everythingGraph } from './gen.mjs';

const inside = (outer, inner) => inner.x >= outer.x - 0.5 && inner.y >= outer.y - 0.5
  && inner.x + inner.width <= outer.x + outer.width + 0.5 && inner.y + inner.height <= outer.y + outer.height + 0.5;

for (const [name, graph] of [
  ['the recorded showcase graph', JSON.parse(fs.readFileSync(new URL('./fixtures/showcase-completed.bundle.json', import.meta.url), 'utf8')).graph],
  ['the generated graph with a nested flow run twice', everythingGraph()],
]) {
  test(`layout of ${name}`, () => {
    const model = buildModel(graph);
    const lay = layout(model);
    assert.ok(lay.width > 0 && lay.height > 0);
    for (const n of model.nodes) {
      const b = lay.nodes.get(n.key);
      assert.ok(b, `${n.key} placed`);
      if (n.parentKey != null) assert.ok(inside(lay.nodes.get(n.parentKey), b), `${n.key} inside ${n.parentKey}`);
      if (n.kind === 'group' || n.kind === 'if') {
        const xs = n.children.map((c) => lay.nodes.get(c).x);
        assert.deepEqual(xs, xs.slice().sort((a, c) => a - c), `${n.key}: parts left to right in order`);
        assert.ok(b.header && inside(b, b.header), `${n.key} has its header inside`);
      }
    }
    // Sequence edges go down the page.
    for (const e of lay.edges) {
      const from = lay.all.get(e.from);
      const to = lay.all.get(e.to);
      assert.ok(from.y < to.y, `${e.from} above ${e.to}`);
    }
    assert.equal(lay.repeats.length, 1);
  });
}
