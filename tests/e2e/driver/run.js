// End-to-end test of the stacklens extension in a real VS Code: code-server (VS Code 1.100 web) driven by
// Debian's chromium through playwright-core. Installs the .vsix, opens a Python file in a workspace whose
// settings point at a tiny local model and a corpus index, types, waits for ghost text produced by the
// stacklens server, accepts it with Tab, then checks the match highlight (underline + gutter mark), its hover,
// the status bar and the "show matches" command. Screenshots of every step go to $ARTIFACTS.
//
// Env (tests/e2e/test_vscode.py sets them): CODE_SERVER, VSIX, WORKSPACE, FILE, ARTIFACTS, STATE, PORT,
// TYPE_TEXT (typed at the end of the file, followed by Enter), EXPECT (text the suggestion must contain),
// EXPECT_SOURCE (source named by the match), EXPECT_MODEL (model name the status bar shows), CHROMIUM, TIMEOUT_S (whole run), DOCS_IMAGE (optional copy target).
// Every wait is bounded. Exit status 0 only when every step passed; a JSON summary is the last stdout line.
'use strict';
const { chromium } = require('playwright-core');
const cp = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const env = (k, d) => process.env[k] ?? d;
const CODE_SERVER = env('CODE_SERVER');
const VSIX = env('VSIX');
const WORKSPACE = env('WORKSPACE');
const FILE = env('FILE', 'ring.py');
const ARTIFACTS = env('ARTIFACTS', path.resolve('artifacts/e2e'));
const STATE = env('STATE', fs.mkdtempSync(path.join(os.tmpdir(), 'stacklens-e2e-')));
const PORT = Number(env('PORT', '8089'));
const TYPE_TEXT = env('TYPE_TEXT', 'def ring_buffer_push(ring, head, capacity, value):');
const EXPECT = env('EXPECT', 'ring_buffer_items');
const EXPECT_SOURCE = env('EXPECT_SOURCE', 'acme/ring/ring.py');
const EXPECT_MODEL = env('EXPECT_MODEL', '');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TIMEOUT_S = Number(env('TIMEOUT_S', '420'));
const DOCS_IMAGE = env('DOCS_IMAGE', '');

const t0 = Date.now();
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1) + 's';
const log = (...a) => console.log(`[e2e ${elapsed()}]`, ...a);
const steps = [];
let codeServer;

fs.mkdirSync(ARTIFACTS, { recursive: true });

function stopCodeServer() {
  if (!codeServer || codeServer.exitCode !== null) return;
  // code-server runs detached in its own process group (extension host, our Python server): end the group.
  try { process.kill(-codeServer.pid, 'SIGTERM'); } catch { /* already gone */ }
  const pid = codeServer.pid;
  setTimeout(() => { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
}

// Watchdog: whatever hangs, the run ends (the pytest wrapper has its own, longer, timeout too).
const watchdog = setTimeout(() => {
  log(`TIMEOUT after ${TIMEOUT_S}s`);
  stopCodeServer();
  finish(false, 'watchdog timeout');
}, TIMEOUT_S * 1000);

function finish(ok, error) {
  clearTimeout(watchdog);
  const summary = { ok, error: error || null, seconds: (Date.now() - t0) / 1000, steps };
  console.log(JSON.stringify(summary));
  fs.writeFileSync(path.join(ARTIFACTS, 'summary.json'), JSON.stringify(summary, null, 1));
  process.exitCode = ok ? 0 : 1;
  setTimeout(() => process.exit(ok ? 0 : 1), 6000).unref();
}

function run(cmd, args, timeoutMs) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${r.status ?? r.error}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

function healthy() {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: PORT, path: '/healthz', timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

async function startCodeServer() {
  const userData = path.join(STATE, 'user-data');
  const extDir = path.join(STATE, 'extensions');
  const config = path.join(STATE, 'config.yaml');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(config, `bind-addr: 127.0.0.1:${PORT}\nauth: none\ncert: false\n`);
  // A fresh user-data dir per run: no restored editor backups, no welcome page, no trust prompt.
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'workbench.tips.enabled': false,
    'editor.inlineSuggest.enabled': true,
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'editor.wordBasedSuggestions': 'off',
    'editor.hover.delay': 300,
    'editor.hover.above': false,
    'files.autoSave': 'off',
    'files.hotExit': 'off',
    'workbench.colorTheme': 'Default Dark Modern',
  }, null, 1));
  const common = ['--config', config, '--user-data-dir', userData, '--extensions-dir', extDir];
  log('installing', path.basename(VSIX));
  log(run(CODE_SERVER, [...common, '--install-extension', VSIX, '--force'], 120_000).trim().split('\n').pop());
  const out = fs.openSync(path.join(ARTIFACTS, 'code-server.log'), 'w');
  codeServer = cp.spawn(CODE_SERVER, [...common, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', WORKSPACE],
  { detached: true, stdio: ['ignore', out, out], env: { ...process.env } });
  for (let i = 0; i < 240; i++) { // up to ~120 s on a loaded machine
    if (await healthy()) { log('code-server healthy'); return; }
    if (codeServer.exitCode !== null) throw new Error(`code-server exited with ${codeServer.exitCode}; see code-server.log`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('code-server did not answer /healthz');
}

async function step(name, fn, page) {
  const s0 = Date.now();
  try {
    const detail = await fn();
    steps.push({ name, ok: true, seconds: (Date.now() - s0) / 1000, detail: detail ?? null });
    log(`PASS ${name}`, detail ? JSON.stringify(detail).slice(0, 300) : '');
  } catch (e) {
    steps.push({ name, ok: false, seconds: (Date.now() - s0) / 1000, error: String(e && e.message || e) });
    log(`FAIL ${name}: ${e && e.message}`);
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, `failure-${name}.png`) }).catch(() => {});
    throw e;
  }
}

const editorText = async (p) => (await p.locator('.monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');
// Ghost text: the inline part and the view zone with further lines. Monaco renders spaces as NBSP and
// splits tokens into spans, so texts are compared with whitespace collapsed.
const GHOST = '.ghost-text-decoration, .ghost-text';
const norm = (t) => t.replace(/\s+/g, ' ');
const shot = (p, n) => p.screenshot({ path: path.join(ARTIFACTS, n) });

// The extension's output channel as VS Code writes it: <user-data>/logs/<session>/exthost*/stacklens.stacklens/stacklens.log
function logFiles(dir) {
  const out = [];
  for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...logFiles(f));
    else if (e.name === 'stacklens.log') out.push(f);
  }
  return out.sort();
}

// Pids of every server the extension started, from its output channel ("... on stdio (pid N)").
function serverPids() {
  const pids = [];
  for (const f of logFiles(path.join(STATE, 'user-data', 'logs'))) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/stacklens lsp on stdio \(pid (\d+)\)/g)) pids.push(Number(m[1]));
  }
  return pids;
}

async function runCommand(p, title) {
  await p.keyboard.press('F1');
  await p.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 15000 });
  await p.keyboard.type(title, { delay: 10 });
  await p.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`, { timeout: 15000 });
  await p.keyboard.press('Enter');
}

async function main() {
  for (const [k, v] of Object.entries({ CODE_SERVER, VSIX, WORKSPACE })) if (!v) throw new Error(`${k} is not set`);
  await startCodeServer();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stacklens-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1400, height: 850 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const p = context.pages()[0] || await context.newPage();
  const consoleLines = [];
  p.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  p.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  try {
    await step('01-workbench', async () => {
      await p.goto(`http://127.0.0.1:${PORT}/?folder=${encodeURIComponent(WORKSPACE)}`, { waitUntil: 'domcontentloaded', timeout: 60000 });
      await p.waitForSelector('.monaco-workbench', { timeout: 90000 });
      await p.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 90000 });
      await shot(p, '01-workbench.png');
    }, p);

    await step('02-open-file-server-running', async () => {
      await p.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
      await p.keyboard.press('Control+P');
      await p.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 15000 });
      await p.keyboard.type(FILE, { delay: 20 });
      await p.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 15000 });
      await p.waitForTimeout(300);
      await p.keyboard.press('Enter');
      await p.waitForSelector(`.tab[aria-label*="${FILE}"]`, { timeout: 15000 });
      await p.waitForSelector('.monaco-editor .view-lines', { timeout: 15000 });
      // The status bar item reads "stacklens: no matches" once the language server is running.
      const sb = p.locator('.statusbar-item', { hasText: /stacklens: /i });
      await sb.first().waitFor({ timeout: 120000 });
      const text = await sb.first().innerText();
      await shot(p, '02-open-file.png');
      return { statusBar: text };
    }, p);

    let ghost = '';
    await step('03-ghost-text', async () => {
      await p.locator('.monaco-editor .view-lines').first().click();
      await p.keyboard.press('Control+End');
      // Type a line the way a user does (auto-closed brackets and all), then Enter: VS Code indents the
      // new line, and the suggestion for the body is requested there.
      await p.keyboard.type(TYPE_TEXT, { delay: 40 });
      await p.keyboard.press('Enter');
      // The first request may wait for the model to load; re-trigger (Alt+\) a bounded number of times.
      for (let attempt = 0; attempt < 6 && !ghost.includes(norm(EXPECT)); attempt++) {
        if (attempt > 0) await p.keyboard.press('Alt+Backslash');
        try {
          await p.waitForFunction(([sel, exp]) => [...document.querySelectorAll(sel)].map((e) => e.textContent).join(' ')
            .replace(/\s+/g, ' ').includes(exp), [GHOST, norm(EXPECT)], { timeout: 20000 });
        } catch { /* retried below */ }
        ghost = norm((await p.locator(GHOST).allTextContents()).join(' '));
      }
      await shot(p, '03-ghost-text.png');
      if (!ghost.includes(norm(EXPECT))) throw new Error(`no ghost text containing ${EXPECT}; saw ${JSON.stringify(ghost)}`);
      return { ghost: ghost.slice(0, 200) };
    }, p);

    await step('04-accept-with-tab', async () => {
      await p.keyboard.press('Tab');
      await p.waitForFunction(([sel, exp]) => (document.querySelector('.monaco-editor .view-lines')?.textContent ?? '')
        .replace(/\s+/g, ' ').includes(exp) && !document.querySelector(sel), [GHOST, norm(EXPECT)], { timeout: 15000 });
      const text = await editorText(p);
      await shot(p, '04-accepted.png');
      await p.keyboard.press('Escape'); // dismiss the next suggestion the server offers after the accepted one
      return { lines: text.split('\n').length };
    }, p);

    let target;
    await step('05-match-highlight', async () => {
      // The decoration: a dotted underline on the matched text (CSS on spans) and a gutter icon
      // (background-image in the glyph margin). Both come from the server's diagnostics after stacklens.accept.
      await p.waitForFunction(() => {
        const under = [...document.querySelectorAll('.monaco-editor .view-lines span')]
          .some((el) => { const s = getComputedStyle(el); return s.textDecorationLine.includes('underline') && s.textDecorationStyle === 'dotted'; });
        const gutter = [...document.querySelectorAll('.monaco-editor .margin-view-overlays div, .monaco-editor .glyph-margin-widgets div')]
          .some((el) => getComputedStyle(el).backgroundImage.includes('match'));
        return under && gutter;
      }, null, { timeout: 60000 });
      // Only our decoration underlines the match: the extension asks the server for hint diagnostics,
      // which VS Code draws as three dots, not as a second (warning or error) squiggle. Some mark drawn is
      // the sign that VS Code has drawn this file's diagnostics (all severities in one pass): only then can
      // "no squiggle" mean anything.
      const marks = ['hint', 'info', 'warning', 'error'].map((k) => `.monaco-editor .squiggly-${k}`).join(', ');
      await p.locator(marks).first().waitFor({ state: 'attached', timeout: 30000 });
      const squiggles = await p.locator('.monaco-editor .squiggly-warning, .monaco-editor .squiggly-error, .monaco-editor .squiggly-info').count();
      if (squiggles) throw new Error(`${squiggles} diagnostic squiggle(s) drawn under the match decoration`);
      const sb = p.locator('.statusbar-item', { hasText: /stacklens: 1 match/ });
      await sb.first().waitFor({ timeout: 30000 });
      // The status bar names the model (not a path or URL) once the engine is ready.
      if (EXPECT_MODEL) await p.locator('.statusbar-item', { hasText: `· ${EXPECT_MODEL}` }).first().waitFor({ timeout: 30000 });
      // Hover target: an underlined word on the last highlighted line, so the hover (shown below it,
      // editor.hover.above=false) leaves the highlighted code visible in the screenshot.
      target = await p.evaluate(() => {
        const spans = [...document.querySelectorAll('.monaco-editor .view-lines span')]
          .filter((e) => getComputedStyle(e).textDecorationStyle === 'dotted' && getComputedStyle(e).textDecorationLine.includes('underline') && e.textContent.trim().length > 3);
        const el = spans.reduce((a, b) => (b.getBoundingClientRect().top > a.getBoundingClientRect().top ? b : a));
        const r = el.getBoundingClientRect();
        return { x: r.left + Math.min(r.width / 2, 40), y: r.top + r.height / 2, text: el.textContent };
      });
      await p.mouse.move(5, 5);
      await shot(p, '05-match-highlight.png');
      return { statusBar: await sb.first().innerText(), underlined: target.text };
    }, p);

    await step('06-hover', async () => {
      const hover = p.locator('.monaco-hover:visible', { hasText: EXPECT_SOURCE });
      for (let attempt = 0; attempt < 4; attempt++) {
        await p.mouse.move(target.x + 200, target.y + 120);
        await p.waitForTimeout(200);
        await p.mouse.move(target.x, target.y, { steps: 5 });
        try { await hover.first().waitFor({ timeout: 10000 }); break; } catch { /* retry */ }
      }
      await hover.first().waitFor({ timeout: 5000 });
      const text = (await hover.first().innerText()).replace(/\u00a0/g, ' ');
      if (!/MIT/.test(text)) throw new Error(`hover lacks the licence: ${text}`);
      // The commonness and the side-by-side evidence (the source text is read from the corpus file).
      if (!/found in 1 file/.test(text) || !/Side by side/.test(text)) throw new Error(`hover lacks the evidence: ${text}`);
      await p.waitForTimeout(300);
      await shot(p, '06-match-hover.png');
      if (DOCS_IMAGE) fs.copyFileSync(path.join(ARTIFACTS, '06-match-hover.png'), DOCS_IMAGE);
      return { hover: text.slice(0, 300) };
    }, p);

    await step('07-show-matches-command', async () => {
      await p.mouse.move(5, 5);
      await p.keyboard.press('Escape');
      await runCommand(p, 'stacklens: Show Corpus Matches in This File');
      const row = p.locator('.quick-input-list .monaco-list-row', { hasText: EXPECT_SOURCE });
      await row.first().waitFor({ timeout: 15000 });
      const text = await row.first().innerText();
      await shot(p, '07-show-matches.png');
      await p.keyboard.press('Escape');
      return { row: text.replace(/\n/g, ' ') };
    }, p);
    await step('08-search-selection', async () => {
      // Select the function body and search it: the server's stacklens.searchSelection, results in a quick pick.
      await p.locator('.monaco-editor .view-lines').first().click();
      await p.keyboard.press('Control+A');
      await runCommand(p, 'stacklens: Search Selection in the Training Corpus');
      const row = p.locator('.quick-input-list .monaco-list-row', { hasText: EXPECT_SOURCE });
      await row.first().waitFor({ timeout: 30000 });
      const text = await row.first().innerText();
      await shot(p, '08-search-selection.png');
      await p.keyboard.press('Escape');
      await p.locator('.monaco-editor .view-lines').first().click(); // no selection left
      await p.keyboard.press('Control+End');
      // The extension asks with quiet: true, so no server notification pops up over the quick pick. A
      // server message would have reached the extension before the search's answer; a toast the extension
      // shows after it (a search with nothing selected) is the sign that an earlier one would be drawn by now.
      await runCommand(p, 'stacklens: Search Selection in the Training Corpus');
      await p.locator('.notification-toast', { hasText: /select some code|in the corpus/ }).first().waitFor({ timeout: 15000 });
      const toasts = await p.locator('.notification-toast', { hasText: 'in the corpus' }).count();
      if (toasts) throw new Error('the server showed a message on top of the search results');
      await runCommand(p, 'Notifications: Clear All Notifications').catch(() => p.keyboard.press('Escape'));
      return { row: text.replace(/\n/g, ' ') };
    }, p);

    await step('09-toggle-completions', async () => {
      const item = p.locator('.statusbar-item', { hasText: /stacklens: / }).first();
      await runCommand(p, 'stacklens: Toggle Inline Completions');
      await item.locator('.codicon-circle-slash').waitFor({ timeout: 15000 });
      await shot(p, '09-completions-off.png');
      await runCommand(p, 'stacklens: Toggle Inline Completions');
      await item.locator('.codicon-sparkle').waitFor({ timeout: 15000 });
    }, p);

    await step('09b-compare-with-source', async () => {
      // The match under the cursor against its source, in VS Code's diff editor (two virtual documents).
      await p.mouse.click(target.x, target.y);
      await runCommand(p, 'stacklens: Compare with the Corpus Source');
      const diff = p.locator('.monaco-diff-editor');
      await diff.first().waitFor({ timeout: 30000 });
      const tab = p.locator('.tab', { hasText: /↔ this file/ });
      await tab.first().waitFor({ timeout: 15000 });
      const title = await tab.first().innerText();
      if (!title.includes(EXPECT_SOURCE)) throw new Error(`the diff editor's title does not name the source: ${title}`);
      // The source side, once drawn (the virtual document's text arrives after the editor opens).
      await diff.first().locator('.editor.original .view-lines', { hasText: 'return' }).first().waitFor({ timeout: 15000 });
      const left = (await diff.first().locator('.editor.original .view-lines').innerText()).replace(/\u00a0/g, ' ');
      if (!norm(left).includes('return head')) throw new Error(`the source side lacks the source lines: ${left.slice(0, 300)}`);
      await p.waitForTimeout(300);
      await shot(p, '09b-compare-with-source.png');
      // Closed by its tab's close button: the command palette's "close" entries could close ring.py too.
      await tab.first().hover();
      await tab.first().locator('.tab-actions .action-label').first().click();
      await p.locator('.monaco-diff-editor').first().waitFor({ state: 'detached', timeout: 15000 });
      return { title };
    }, p);

    await step('10-restart-after-crash', async () => {
      // Kill the language server (by the pid it logs): the extension must start a new one after its back-off.
      const before = serverPids();
      if (!before.length) throw new Error('no server pid in the stacklens output log');
      const pid = before[before.length - 1];
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 60000;
      let now = before;
      while (Date.now() < deadline && now.length <= before.length) {
        await p.waitForTimeout(500);
        now = serverPids();
      }
      if (now.length <= before.length) throw new Error('the server was not restarted within 60 s');
      // The new server re-checks the open file in the background: the match comes back.
      await p.locator('.statusbar-item', { hasText: /stacklens: 1 match/ }).first().waitFor({ timeout: 60000 });
      await shot(p, '10-restarted.png');
      return { killed: pid, restarted: now[now.length - 1] };
    }, p);
    finishOk = true;
  } finally {
    fs.writeFileSync(path.join(ARTIFACTS, 'browser-console.log'), consoleLines.join('\n'));
    // The extension's output channel (the server's log included), for diagnosing a failed run.
    const logs = logFiles(path.join(STATE, 'user-data', 'logs'));
    if (logs.length) fs.copyFileSync(logs[logs.length - 1], path.join(ARTIFACTS, 'stacklens-output.log'));
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

let finishOk = false;
process.on('SIGTERM', () => { stopCodeServer(); process.exit(1); });
main()
  .then(() => { stopCodeServer(); finish(finishOk); })
  .catch((e) => { log('ERROR', e && e.stack || e); stopCodeServer(); finish(false, String(e && e.message || e)); });
