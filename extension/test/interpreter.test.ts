import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { candidates, expandPath, findInterpreter, NotInstalledError, probeFailure } from '../src/interpreter';

const base = { configured: '', workspaceFolders: ['/ws'], env: { PATH: '/usr/bin:/bin', HOME: '/home/u' }, platform: 'linux' as NodeJS.Platform };

test('search order: VIRTUAL_ENV, workspace .venv, then PATH', () => {
  const present = new Set(['/venv/bin/python', '/ws/.venv/bin/python', '/usr/bin/python3', '/bin/python']);
  const list = candidates({ ...base, env: { ...base.env, VIRTUAL_ENV: '/venv' }, exists: (p) => present.has(p) });
  assert.deepEqual(list.map((c) => c.path), ['/venv/bin/python', '/ws/.venv/bin/python', '/usr/bin/python3', '/bin/python']);
  assert.deepEqual(list.map((c) => c.origin), ['VIRTUAL_ENV', 'workspace .venv', 'PATH', 'PATH']);
});

test('a configured path is used alone, with ${workspaceFolder} and ~ expanded', () => {
  const list = candidates({ ...base, configured: '${workspaceFolder}/.venv/bin/python', exists: () => true });
  assert.deepEqual(list, [{ path: '/ws/.venv/bin/python', origin: 'setting stacklens.pythonPath' }]);
  assert.equal(expandPath('~/py/bin/python', [], '/home/u'), path.join('/home/u', 'py/bin/python'));
  // The server's cwd is not the workspace: a relative path is taken from the workspace folder, a bare
  // name is looked up on PATH.
  assert.equal(expandPath('.venv/bin/python', ['/ws'], '/home/u'), path.join('/ws', '.venv/bin/python'));
  assert.equal(expandPath('python3', ['/ws'], '/home/u'), 'python3');
});

test('windows venvs use Scripts/python.exe', () => {
  const list = candidates({ ...base, platform: 'win32', env: {}, exists: (p) => p.endsWith(path.join('.venv', 'Scripts', 'python.exe')) });
  assert.equal(list.length, 1);
});

test('the first interpreter whose probe succeeds wins', async () => {
  const found = await findInterpreter(
    [{ path: '/a', origin: 'PATH' }, { path: '/b', origin: 'PATH' }],
    async (p) => ({ ok: p === '/b', detail: p === '/b' ? '/b' : 'stacklens is not installed here' }),
  );
  assert.deepEqual(found, { python: '/b', origin: 'PATH' });
});

test('when none works the error explains how to install and lists what was tried', async () => {
  await assert.rejects(
    findInterpreter([{ path: '/usr/bin/python3', origin: 'PATH' }], async () => ({ ok: false, detail: 'stacklens is not installed here' })),
    (e: unknown) => {
      assert.ok(e instanceof NotInstalledError);
      assert.match(e.message, /stacklens is not installed/);
      assert.match(e.message, /pip install/);
      assert.match(e.message, /stacklens\.pythonPath/);
      assert.match(e.message, /\/usr\/bin\/python3 \(PATH\)/);
      return true;
    },
  );
  await assert.rejects(findInterpreter([], async () => ({ ok: true, detail: '' })), /no Python interpreter found/);
});

test('probe failures are summarised in one line', () => {
  assert.equal(probeFailure("Traceback...\nModuleNotFoundError: No module named 'lsp_server'\n"), 'stacklens is not installed here');
  assert.equal(probeFailure('', 'ENOENT'), 'not found');
  assert.equal(probeFailure('boom\nImportError: bad pygls\n'), 'ImportError: bad pygls');
});
