import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RestartPolicy } from '../src/backoff';

test('delays double up to the cap, then the policy gives up', () => {
  let t = 0;
  const p = new RestartPolicy({ baseMs: 1000, maxMs: 4000, maxCrashes: 5, windowMs: 60_000 }, () => t);
  const delays = [1, 2, 3, 4, 5].map(() => { t += 10; return p.onCrash(); });
  assert.deepEqual(delays, [1000, 2000, 4000, 4000, undefined]);
});

test('crashes outside the window are forgotten', () => {
  let t = 0;
  const p = new RestartPolicy({ baseMs: 100, maxMs: 1000, maxCrashes: 3, windowMs: 1000 }, () => t);
  assert.equal(p.onCrash(), 100);
  t = 500;
  assert.equal(p.onCrash(), 200);
  t = 5000; // both earlier crashes are out of the window
  assert.equal(p.onCrash(), 100);
  assert.equal(p.recentCrashes, 1);
});

test('a deliberate restart resets the count', () => {
  const p = new RestartPolicy({ baseMs: 1, maxMs: 10, maxCrashes: 2, windowMs: 1e9 }, () => 0);
  assert.equal(p.onCrash(), 1);
  assert.equal(p.onCrash(), undefined);
  p.reset();
  assert.equal(p.onCrash(), 1);
});

test('the default gives up at the 5th crash within 3 minutes, as docs/vscode.md says', () => {
  let t = 0;
  const p = new RestartPolicy(undefined, () => t);
  const delays = [1, 2, 3, 4, 5].map(() => { t += 1000; return p.onCrash(); });
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, undefined]);
  assert.equal(p.recentCrashes, 5);
  assert.equal(p.windowMs, 180_000);
});
