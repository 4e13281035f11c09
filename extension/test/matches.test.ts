import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attributionLines, blockedOf, commentLine, describe, foundIn, Match, matchCountLabel, matchesOf } from '../src/matches';

const m: Match = {
  kind: 'exact', score: 0.97,
  source: { repo: 'acme/ring', path: 'ring.py', license: 'MIT', url: 'https://example.com/acme/ring/ring.py' },
  source_span: { start_line: 1, end_line: 9 },
  query_span: { start_line: 1, end_line: 9, start_char: 0, end_char: 300 },
  matched_chars: 280,
};

test('matches are read from diagnostic data and junk is ignored', () => {
  assert.deepEqual(matchesOf({ id: 1, origin: 'accepted', matches: [m, { nope: true }, null] }), [m]);
  assert.deepEqual(matchesOf(undefined), []);
  assert.deepEqual(matchesOf({ matches: 'x' }), []);
});

test('blocked comes from diagnostic data, whatever the severity; older servers: from Error', () => {
  assert.equal(blockedOf({ blocked: true, matches: [m] }, false), true); // a hint for a blocked licence
  assert.equal(blockedOf({ blocked: false, matches: [m] }, true), false); // an error the user asked for
  assert.equal(blockedOf({ matches: [m] }, true), true);
  assert.equal(blockedOf(undefined, false), false);
});

test('describe names source, lines and licence', () => {
  assert.equal(describe(m), 'acme/ring/ring.py lines 1-9 (MIT)');
  const noRepo: Match = { ...m, source: { repo: null, path: 'a.py', license: null, url: null }, source_span: { start_line: 3, end_line: 3 } };
  assert.equal(describe(noRepo), 'a.py line 3 (licence unknown)');
});

test('attribution uses the language comment syntax, once per source', () => {
  assert.deepEqual(attributionLines('python', [m, m]), ['# Adapted from acme/ring/ring.py lines 1-9 (MIT) https://example.com/acme/ring/ring.py']);
  assert.equal(commentLine('rust', 'x'), '// x');
  assert.equal(commentLine('lua', 'x'), '-- x');
  assert.equal(commentLine('html', 'x'), '<!-- x -->');
  assert.equal(commentLine('some-new-language', 'x'), '/* x */');
});

test('match counts read naturally', () => {
  assert.equal(matchCountLabel(0), 'no matches');
  assert.equal(matchCountLabel(1), '1 match');
  assert.equal(matchCountLabel(3), '3 matches');
});

test('foundIn counts the corpus files, 1 when the server sends no count', () => {
  const base = { kind: 'exact' as const, score: 1, source: { repo: null, path: 'a.py', license: null, url: null }, source_span: { start_line: 1, end_line: 2 }, matched_chars: 200 };
  assert.equal(foundIn(base), 'found in 1 file');
  assert.equal(foundIn({ ...base, occurrences: 2140 }), 'found in 2,140 files');
});
