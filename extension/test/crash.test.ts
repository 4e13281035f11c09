import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { crashReason, StderrTail } from '../src/crash';

const shadowed = [
  '09:30:01Z INFO lsp_server.main: starting',
  'Traceback (most recent call last):',
  '  File "<frozen runpy>", line 198, in _run_module_as_main',
  '  File "/venv/lib/python3.11/site-packages/pygls/server.py", line 3, in <module>',
  '    import logging',
  '  File "/ws/logging.py", line 1, in <module>',
  "    raise RuntimeError('workspace logging.py was imported')",
  "RuntimeError: workspace logging.py was imported",
];

test('a traceback: the exception and the innermost file that raised it', () => {
  assert.equal(crashReason(shadowed), "RuntimeError: workspace logging.py was imported (in /ws/logging.py:1)");
});

test('the last of several tracebacks wins; dotted exception names count', () => {
  const lines = ['Traceback (most recent call last):', '  File "/a.py", line 2, in f', 'ValueError: first',
    'Traceback (most recent call last):', '  File "/b.py", line 9, in g', 'pydantic_core._pydantic_core.ValidationError: 1 validation error'];
  assert.equal(crashReason(lines), 'pydantic_core._pydantic_core.ValidationError: 1 validation error (in /b.py:9)');
});

test('no traceback: the last logged error, else the last line, else nothing', () => {
  assert.equal(crashReason(['09:30:01Z INFO x: up', '09:30:02Z ERROR lsp_server.main: cannot open the index', 'bye']), 'lsp_server.main: cannot open the index');
  assert.equal(crashReason(['', 'Killed', '']), 'Killed');
  assert.equal(crashReason([]), undefined);
  // Killed by a signal: the last info record says what it was doing, not why it died.
  assert.equal(crashReason(['09:47:13Z INFO lsp_server.checker: scan x.py: 1 chunks', '09:47:14Z WARNING y: slow']), undefined);
});

test('the tail keeps the last lines and settles when stderr closes', async () => {
  const t = new StderrTail(2);
  ['a', 'b', 'c'].forEach((l) => t.push(l));
  assert.deepEqual(t.lines, ['b', 'c']);
  t.close();
  await t.ended;
});
