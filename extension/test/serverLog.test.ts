import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { classify } from '../src/serverLog';

test('levels come from the server log format', () => {
  assert.deepEqual(classify('12:25:26Z INFO lsp_server: stacklens lsp on stdio', 'info'), { level: 'info', text: 'lsp_server: stacklens lsp on stdio' });
  assert.equal(classify('12:25:26Z WARNING x: y', 'info').level, 'warn');
  assert.equal(classify('12:25:26Z DEBUG x: y', 'info').level, 'debug');
  assert.equal(classify('12:25:26Z CRITICAL x: y', 'info').level, 'error');
});

test('traceback lines keep an error level; foreign lines are info', () => {
  assert.equal(classify('Traceback (most recent call last):', 'info').level, 'error');
  assert.equal(classify('  File "/x.py", line 3, in <module>', 'error').level, 'error');
  assert.equal(classify('ValueError: boom', 'warn').level, 'warn');
  assert.equal(classify('some library chatter', 'error').level, 'info');
});
