import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { diffDocs } from '../src/evidenceDocs';

const answer = {
  title: 'acme/ring/ring.py lines 3-5 ↔ this file',
  query: { text: 'def push(q, v):\n    q.append(v)\n    return q\n', firstLine: 10, label: 'this file' },
  source: { text: 'def push(buf, item):\n    buf.append(item)\n    return buf\n', firstLine: 3, label: 'acme/ring/ring.py', origin: 'index', reason: null },
  evidence: { renames: { buf: 'q', item: 'v' } },
};

test('the source goes left, this file right, both named like the source file', () => {
  const docs = diffDocs(answer, 'm1');
  assert.ok(typeof docs !== 'string');
  assert.equal(docs.left.text, answer.source.text);
  assert.equal(docs.right.text, answer.query.text);
  assert.equal(docs.left.path, '/m1/source/ring.py');
  assert.equal(docs.right.path, '/m1/this-file/ring.py');
  assert.equal(docs.title, 'acme/ring/ring.py lines 3-5 ↔ this file lines 10-12 · renamed buf → q, item → v');
});

test('no source text, an error or no server: a message to show instead', () => {
  const gone = { ...answer, source: { ...answer.source, text: null, reason: 'the corpus file /c/ring.py is gone' } };
  assert.equal(diffDocs(gone, 'm2'), 'stacklens: the source text is not available (the corpus file /c/ring.py is gone).');
  assert.equal(diffDocs({ error: 'no corpus match there' }, 'm3'), 'stacklens: no corpus match there.');
  assert.equal(diffDocs(undefined, 'm4'), 'stacklens: the language server is not running.');
});
