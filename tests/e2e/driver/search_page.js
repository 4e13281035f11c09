// The stack search page of `code-search serve` in Debian's chromium through playwright-core: type the
// token, paste code, search, check the ranked sources and the side-by-side view, then open the page by
// its link (the same tab, and a new tab that must ask for the token). Screenshots go to $ARTIFACTS.
//
// Env (tests/e2e/test_search_page.py sets them): BASE (service URL), TOKEN, QUERY_FILE, EXPECT_SOURCE,
// EXPECT_LICENSE, EXPECT_POLICY (the policy's reason the first source shows), CHROMIUM, ARTIFACTS, TIMEOUT_S, DOCS_IMAGE (optional copy of the side-by-side shot).
// Every wait is bounded. Exit status 0 only when every step passed; a JSON summary is the last stdout line.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const env = (k, d) => process.env[k] ?? d;
const BASE = env('BASE');
const TOKEN = env('TOKEN');
const QUERY = fs.readFileSync(env('QUERY_FILE'), 'utf8');
const EXPECT_SOURCE = env('EXPECT_SOURCE');
const EXPECT_LICENSE = env('EXPECT_LICENSE');
const EXPECT_POLICY = env('EXPECT_POLICY', 'policy:');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const ARTIFACTS = env('ARTIFACTS', path.resolve('artifacts/e2e'));
const TIMEOUT_S = Number(env('TIMEOUT_S', '120'));
const DOCS_IMAGE = env('DOCS_IMAGE', '');
const WAIT = { timeout: 20000 };

const steps = [];
const t0 = Date.now();
const log = (...a) => console.log(`[page ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
fs.mkdirSync(ARTIFACTS, { recursive: true });

function finish(ok, error) {
  const summary = { ok, error: error || null, seconds: (Date.now() - t0) / 1000, steps };
  console.log(JSON.stringify(summary));
  process.exitCode = ok ? 0 : 1;
  setTimeout(() => process.exit(ok ? 0 : 1), 3000).unref();
}
const watchdog = setTimeout(() => finish(false, 'watchdog timeout'), TIMEOUT_S * 1000);

function check(cond, what) { if (!cond) throw new Error(what); }

async function step(page, name, fn) {
  log('step', name);
  try {
    const detail = await fn();
    steps.push({ name, ok: true, detail: detail ?? null });
  } catch (err) {
    steps.push({ name, ok: false, detail: String(err && err.message || err) });
    throw err;
  } finally {
    await page.screenshot({ path: path.join(ARTIFACTS, `page-${name}.png`), fullPage: true }).catch(() => {});
  }
}

async function sideBySide(page) {
  await page.locator('#evidence').waitFor({ state: 'visible', ...WAIT });
  return page.evaluate(() => [...document.querySelectorAll('#side-by-side tbody tr')].map((tr) => ({
    status: tr.className, cells: [...tr.children].map((td) => td.textContent),
  })));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const external = [];
  context.on('request', (r) => { if (!r.url().startsWith(BASE)) external.push(r.url()); });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/401/.test(m.text())) errors.push(m.text()); });
  let link = '';
  try {
    await step(page, '01-open', async () => {
      await page.goto(`${BASE}/`, WAIT);
      check(await page.locator('#code').isVisible(), 'no code box on the page');
    });
    await step(page, '02-wrong-token', async () => {
      await page.locator('#auth summary').click();
      await page.fill('#token', 'not-the-token');
      await page.fill('#code', QUERY);
      await page.click('#go');
      await page.locator('#error').waitFor({ state: 'visible', ...WAIT });
      const text = await page.textContent('#error');
      check(/401/.test(text) && /bearer token/.test(text), `expected a 401 message, got: ${text}`);
      return text;
    });
    await step(page, '03-search', async () => {
      await page.fill('#token', TOKEN);
      await page.click('#go');
      await page.locator('#matches li').first().waitFor(WAIT);
      const first = await page.textContent('#matches li');
      for (const want of [EXPECT_SOURCE, EXPECT_LICENSE, 'score', 'found in 1 file', EXPECT_POLICY]) {
        check(first.includes(want), `first result lacks ${JSON.stringify(want)}: ${first}`);
      }
      check(await page.locator('#error').isHidden(), 'an error is shown after a good search');
      return first;
    });
    await step(page, '04-side-by-side', async () => {
      await page.locator('#matches li button.open').first().click();
      const rows = await sideBySide(page);
      const same = rows.filter((r) => r.status === 'same');
      check(same.length >= 10, `only ${same.length} identical rows of ${rows.length}`);
      check(same.every((r) => r.cells[1].trim() === r.cells[3].trim() && r.cells[0] && r.cells[2]),
        'a "same" row whose two sides differ or lack line numbers');
      check(same.every((r) => QUERY.includes(r.cells[1])), 'the left side is not the pasted code');
      const marks = await page.locator('#side-by-side mark').count();
      const renames = await page.textContent('#renames');
      check(marks > 0 && /→/.test(renames), `the renamed identifier is not shown (${marks} marks, "${renames}")`);
      link = page.url();
      check(/[?&]q=/.test(link) && /[?&]m=0/.test(link), `the address is no link to this match: ${link}`);
      if (DOCS_IMAGE) await page.screenshot({ path: DOCS_IMAGE, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1040 } });
      return { rows: rows.length, same: same.length, renames };
    });
    await step(page, '05-open-link', async () => {
      await page.goto('about:blank');
      await page.goto(link, WAIT);
      const rows = await sideBySide(page);
      check(rows.length > 10, 'the link did not reopen the side-by-side view');
      check((await page.inputValue('#code')) === QUERY, 'the link did not restore the code');
    });
    const fresh = await context.newPage();
    await step(fresh, '06-link-in-new-tab-asks-token', async () => {
      await fresh.goto(link, WAIT);
      await fresh.locator('#error').waitFor({ state: 'visible', ...WAIT });
      check(await fresh.locator('#token').isVisible(), 'the token field is not offered after a 401');
      await fresh.fill('#token', TOKEN);
      await fresh.click('#go');
      const rows = await sideBySide(fresh);
      check(rows.length > 10, 'no side-by-side view after the token was given');
    });
    check(external.length === 0, `requests left the service: ${external.join(', ')}`);
    check(errors.length === 0, `page errors: ${errors.join(' | ')}`);
    steps.push({ name: '07-self-contained', ok: true, detail: null });
    clearTimeout(watchdog);
    finish(true);
  } catch (err) {
    clearTimeout(watchdog);
    finish(false, String(err && err.message || err));
  } finally {
    await browser.close().catch(() => {});
  }
}

main();
