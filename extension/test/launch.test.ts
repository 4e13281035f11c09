import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { PROBE_ARGS } from '../src/interpreter';
import { PYTHON_FLAGS, resolveArgs, resolvePath, serverLaunch } from '../src/launch';

const input = {
  python: '/venv/bin/python', logLevel: 'debug', extraArgs: [], workspaceFolder: '/ws',
  serverDir: '/home/u/.config/Code/User/globalStorage/stacklens.stacklens', env: { HOME: '/home/u', PATH: '/usr/bin' },
};

test('the server runs isolated (-I), outside the workspace, as `lsp_server.cli lsp`', () => {
  const l = serverLaunch(input);
  assert.equal(l.command, '/venv/bin/python');
  assert.deepEqual(l.args.slice(0, 6), ['-I', '-u', '-m', 'lsp_server.cli', 'lsp', '--log-level']);
  assert.equal(l.args[6], 'debug');
  assert.equal(l.cwd, input.serverDir);
  assert.notEqual(l.cwd, '/ws');
  assert.equal(l.env.PATH, '/usr/bin');
});

test('the probe imports the server package the way the server will (same flags)', () => {
  assert.deepEqual(PROBE_ARGS.slice(0, PYTHON_FLAGS.length), PYTHON_FLAGS);
  assert.ok(PYTHON_FLAGS.includes('-I'));
});

test('path options in extraArgs are resolved against the workspace folder', () => {
  assert.deepEqual(
    resolveArgs(['--index', 'idx', '--log-file=logs/sl.log', '--membership-url', 'http://x', '--index=/abs'], '/ws', '/home/u'),
    ['--index', path.join('/ws', 'idx'), `--log-file=${path.join('/ws', 'logs/sl.log')}`, '--membership-url', 'http://x', '--index=/abs'],
  );
  assert.deepEqual(serverLaunch({ ...input, extraArgs: ['--index', './i'] }).args.slice(-2), ['--index', path.join('/ws', 'i')]);
});

test('resolvePath: relative against the workspace, ${workspaceFolder} and ~ expanded, absolute kept', () => {
  assert.equal(resolvePath('data/idx', '/ws', '/home/u'), path.join('/ws', 'data/idx'));
  assert.equal(resolvePath('${workspaceFolder}/idx', '/ws', undefined), path.join('/ws', 'idx'));
  assert.equal(resolvePath('~/idx', '/ws', '/home/u'), path.join('/home/u', 'idx'));
  assert.equal(resolvePath('/srv/idx', '/ws', '/home/u'), '/srv/idx');
  assert.equal(resolvePath('idx', undefined, undefined), 'idx'); // no folder: nothing to resolve against
});
