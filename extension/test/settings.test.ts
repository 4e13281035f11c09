import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { completionConfigured, needsRestart, toServerConfig } from '../src/settings';

const getter = (values: Record<string, unknown>) => (k: string) => values[k];

test('unset settings become nulls (the server keeps its own defaults)', () => {
  const cfg = toServerConfig(getter({}));
  assert.equal(cfg.completion, null);
  const m = cfg.membership as Record<string, unknown>;
  assert.equal(m.index, null);
  assert.equal(m.url, null);
  assert.equal(m.token, null);
  assert.equal(cfg.debounceMs, null);
});

test('a configured in-process model is passed with device, without url', () => {
  const cfg = toServerConfig(getter({
    'completion.backend': 'transformers', 'completion.model': ' /models/tiny ', 'completion.url': 'http://x',
    'completion.device': 'cpu', 'completion.template': 'auto', 'completion.maxNewTokens': 128,
  }));
  assert.deepEqual(cfg.completion, {
    backend: 'transformers', model: '/models/tiny', url: null, template: null, contextWindow: null,
    maxNewTokens: 128, temperature: null, apiToken: null, device: 'cpu',
  });
});

test('remote backends carry url and token but no device (the server forbids unknown keys)', () => {
  const cfg = toServerConfig(getter({ 'completion.backend': 'openai', 'completion.url': 'http://gpu:8000', 'completion.model': 'sc2' }),
    { completion: 's3cret', membership: 'm-tok' });
  const c = cfg.completion as Record<string, unknown>;
  assert.equal(c.url, 'http://gpu:8000');
  assert.equal(c.apiToken, 's3cret');
  assert.ok(!('device' in c));
  assert.equal((cfg.membership as Record<string, unknown>).token, 'm-tok');
});

test('completion counts as configured by model, url or a non-default backend', () => {
  assert.equal(completionConfigured(getter({})), false);
  assert.equal(completionConfigured(getter({ 'completion.backend': 'transformers', 'completion.model': '' })), false);
  assert.equal(completionConfigured(getter({ 'completion.model': 'm' })), true);
  assert.equal(completionConfigured(getter({ 'completion.backend': 'ollama' })), true);
});

test('membership lists and policy pass through; junk entries are dropped', () => {
  const cfg = toServerConfig(getter({
    'membership.licenseBlock': ['GPL*', 3, 'AGPL*'], 'membership.licenseAllow': [], 'membership.policy': 'block',
    'membership.minChars': 100, 'membership.index': '/srv/idx', 'membership.background': false,
    'membership.ignoreCommonAbove': 50, 'membership.searchPageUrl': ' http://127.0.0.1:8400/ ',
  }));
  const m = cfg.membership as Record<string, unknown>;
  assert.equal(m.ignoreCommonAbove, 50);
  assert.equal(m.searchPageUrl, 'http://127.0.0.1:8400/');
  const unset = toServerConfig(getter({ 'membership.searchPageUrl': '' })).membership as Record<string, unknown>;
  assert.equal(unset.ignoreCommonAbove, null);
  assert.equal(unset.searchPageUrl, null);
  assert.deepEqual(m.licenseBlock, ['GPL*', 'AGPL*']);
  assert.deepEqual(m.licenseAllow, []);
  assert.equal(m.policy, 'block');
  assert.equal(m.minChars, 100);
  assert.equal(m.index, '/srv/idx');
  assert.equal(m.background, false);
});

test('match diagnostics are hints unless the user asks otherwise (the decoration is the highlight)', () => {
  const unset = toServerConfig(getter({}));
  assert.equal(unset.diagnosticSeverity, 'hint');
  assert.equal(unset.blockedDiagnosticSeverity, 'hint');
  const chosen = toServerConfig(getter({ diagnosticSeverity: 'warning', blockedDiagnosticSeverity: 'error' }));
  assert.equal(chosen.diagnosticSeverity, 'warning');
  assert.equal(chosen.blockedDiagnosticSeverity, 'error');
  assert.equal(toServerConfig(getter({ diagnosticSeverity: 'loud' })).diagnosticSeverity, 'hint');
});

test('only launcher settings need a restart', () => {
  assert.equal(needsRestart((s) => s === 'stacklens.pythonPath'), true);
  assert.equal(needsRestart((s) => s === 'stacklens.membership.index'), false);
});

test('every contributed setting is either read by the server mapping or editor-only', () => {
  // package.json sits next to out/ and test/ alike.
  const pkgPath = [path.join(__dirname, '..', 'package.json'), path.join(__dirname, '..', '..', 'package.json')].find(fs.existsSync)!;
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  const keys = Object.keys(pkg.contributes.configuration.properties).map((k: string) => k.replace(/^stacklens\./, ''));
  const read = new Set<string>();
  toServerConfig((k) => { read.add(k); return undefined; });
  toServerConfig((k) => { read.add(k); return k === 'completion.model' ? 'm' : undefined; });
  const editorOnly = new Set(['enableCompletions', 'pythonPath', 'server.extraArgs']);
  for (const k of keys) assert.ok(read.has(k) || editorOnly.has(k), `setting stacklens.${k} is not passed to the server`);
});

test('relative paths are resolved against the workspace folder (the server does not run there)', () => {
  const base = { workspaceFolder: '/ws', home: '/home/u', exists: (p: string) => p === path.join('/ws', 'models/tiny') };
  const cfg = (values: Record<string, unknown>) => toServerConfig(getter(values), {}, base);
  const m = (values: Record<string, unknown>) => (cfg(values).completion as Record<string, unknown>).model;
  assert.equal((cfg({ 'membership.index': 'data/idx' }).membership as Record<string, unknown>).index, path.join('/ws', 'data/idx'));
  assert.equal((cfg({ 'membership.index': '/srv/idx' }).membership as Record<string, unknown>).index, '/srv/idx');
  assert.equal(m({ 'completion.model': './m' }), path.join('/ws', 'm'));
  assert.equal(m({ 'completion.model': 'models/tiny' }), path.join('/ws', 'models/tiny')); // exists in the workspace
  assert.equal(m({ 'completion.model': 'bigcode/starcoder2-3b' }), 'bigcode/starcoder2-3b'); // a hub id
  assert.equal(m({ 'completion.backend': 'ollama', 'completion.model': './m' }), './m'); // a server's model name
});

test('the audit log path is made absolute from the workspace folder; the code flag passes through', () => {
  const base = { workspaceFolder: '/ws', home: '/home/u' };
  const cfg = (s: Record<string, unknown>) => toServerConfig(getter(s), {}, base).membership as Record<string, unknown>;
  assert.equal(cfg({ 'membership.auditLog': 'logs/audit.jsonl' }).auditLog, path.join('/ws', 'logs/audit.jsonl'));
  assert.equal(cfg({ 'membership.auditLog': '/var/log/a.jsonl', 'membership.auditLogIncludeCode': true }).auditLogIncludeCode, true);
  assert.equal(cfg({ 'membership.auditLog': '' }).auditLog, null);
  assert.equal(cfg({}).auditLogIncludeCode, null);
});
