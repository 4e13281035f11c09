import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { membershipLine, modelLabel } from '../src/statusText';

test('the status bar names the model, not the model server URL', () => {
  assert.equal(modelLabel({ engine: 'stacklens http://gpu:8000', model: 'starcoder2-3b', state: 'ready' }), 'starcoder2-3b');
  assert.equal(modelLabel({ engine: 'stacklens http://gpu:8000', model: null, state: 'starting' }), 'stacklens');
  assert.equal(modelLabel({ engine: 'transformers /models/tiny-starcoder/', model: '/models/tiny-starcoder/' }), 'tiny-starcoder');
  assert.equal(modelLabel({ engine: 'openai bigcode/starcoder2-3b', model: 'bigcode/starcoder2-3b' }), 'starcoder2-3b');
  assert.equal(modelLabel(null), 'no model');
});

test('the tooltip does not repeat "index" in front of the server\'s own description', () => {
  assert.equal(membershipLine('index /srv/idx', 'warn'), '- corpus: index /srv/idx; policy: warn');
  assert.equal(membershipLine(undefined, undefined), '- corpus: unknown; policy: ?');
});
