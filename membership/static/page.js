// The stack search page: POST /v1/evidence with the pasted code, then the ranked sources and the
// side-by-side view of the one selected. Corpus text is only ever set as textContent (never HTML).
'use strict';

const TOKEN_KEY = 'stacklens.token';
const MAX_LINK_CHARS = 4000; // longer code is not put in the address bar (servers cap URL sizes)
const TIMEOUT_MS = 60000;
const $ = (id) => document.getElementById(id);
let results = [];
let lastQuery = { text: '', path: '' };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

function sourceName(m) {
  return m.source.repo ? `${m.source.repo}/${m.source.path}` : m.source.path;
}

function plural(n, one, many) {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}

function updateAddress(selected) {
  const params = new URLSearchParams();
  if (lastQuery.text && lastQuery.text.length <= MAX_LINK_CHARS) params.set('q', lastQuery.text);
  if (lastQuery.path) params.set('path', lastQuery.path);
  if (selected !== null && params.has('q')) params.set('m', String(selected));
  const query = params.toString();
  history.replaceState(null, '', query ? `?${query}` : location.pathname);
}

function marked(text, marks) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of marks) {
    if (m.start > at) frag.append(text.slice(at, m.start));
    frag.append(el('mark', { class: m.kind, title: m.kind }, text.slice(m.start, m.end)));
    at = Math.max(at, m.end);
  }
  if (at < text.length) frag.append(text.slice(at));
  return frag;
}

function side(s) {
  if (!s) return [el('td', { class: 'ln' }), el('td', { class: 'code absent' })];
  return [el('td', { class: 'ln' }, String(s.line)), el('td', { class: 'code' }, marked(s.text, s.marks))];
}

function select(index) {
  const r = results[index];
  if (!r) return;
  for (const li of $('matches').children) li.classList.toggle('selected', li.dataset.index === String(index));
  const m = r.match, ev = r.evidence;
  $('evidence-title').textContent =
    `${sourceName(m)}:${m.source_span.start_line}-${m.source_span.end_line} beside your lines ` +
    `${m.query_span.start_line}-${m.query_span.end_line}`;
  const renames = Object.entries(ev.renames);
  $('renames').textContent = renames.length ? 'renamed: ' + renames.map(([s, q]) => `${s} → ${q}`).join(', ') : '';
  $('reason').textContent = ev.reason || (ev.truncated ? 'the match is longer than the view: shown in part' : '');
  $('reason').hidden = !$('reason').textContent;
  const body = $('side-by-side').tBodies[0];
  body.replaceChildren(...ev.rows.map((row) => el('tr', { class: row.status }, ...side(row.query), ...side(row.source))));
  $('evidence').hidden = false;
  updateAddress(index);
}

function card(r, index) {
  const m = r.match;
  const lines = `${m.source_span.start_line}-${m.source_span.end_line}`;
  const name = m.source.url
    ? el('a', { href: m.source.url, target: '_blank', rel: 'noopener noreferrer' }, `${sourceName(m)}:${lines}`)
    : el('span', {}, `${sourceName(m)}:${lines}`);
  const open = el('button', { type: 'button', class: 'open' }, 'side by side');
  open.addEventListener('click', () => select(index));
  const verdict = el('span', { class: `verdict ${r.decision.verdict}`, title: r.decision.reason },
    r.decision.verdict === 'ignore' ? 'ignored' : r.decision.verdict);
  const facts = el('span', { class: 'facts' },
    verdict,
    el('span', { class: 'licence' }, m.source.license || 'licence unknown'),
    el('span', { class: 'score' }, `score ${m.score.toFixed(2)}`),
    el('span', { class: 'kind' }, m.kind),
    el('span', { class: 'common' }, `found in ${plural(m.occurrences, 'file', 'files')}`),
    el('span', {}, `${m.matched_chars.toLocaleString('en')} chars, your lines ${m.query_span.start_line}-${m.query_span.end_line}`));
  const reason = el('div', { class: 'reason' }, `policy: ${r.decision.reason}`);
  return el('li', { 'data-index': String(index) }, name, ' ', facts, ' ', open, reason);
}

async function search(selected) {
  const text = $('code').value;
  const path = $('path').value.trim();
  showError('');
  if (!text.trim()) { showError('Paste some code first.'); return; }
  lastQuery = { text, path };
  $('status').textContent = 'searching…';
  $('go').disabled = true;
  const headers = { 'Content-Type': 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const res = await fetch('/v1/evidence', {
      method: 'POST', headers, signal: abort.signal,
      body: JSON.stringify({ text, path: path || null }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      if (res.status === 401) { $('auth').open = true; $('token').focus(); }
      const detail = typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail ?? res.statusText);
      throw new Error(`${res.status}: ${detail}`);
    }
    results = data.results;
    if (token) $('auth').open = false;
    render(selected);
  } catch (err) {
    results = [];
    $('results').hidden = true;
    $('evidence').hidden = true;
    showError(err.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : String(err.message || err));
  } finally {
    clearTimeout(timer);
    $('status').textContent = '';
    $('go').disabled = false;
  }
}

function render(selected) {
  $('count').textContent = results.length
    ? `found in the corpus: ${plural(results.length, 'source', 'sources')}, best first`
    : 'not found in the corpus';
  $('matches').replaceChildren(...results.map(card));
  $('results').hidden = false;
  $('evidence').hidden = true;
  if (results.length) select(Number.isInteger(selected) && selected < results.length ? selected : 0);
  else updateAddress(null);
}

function init() {
  $('token').value = sessionStorage.getItem(TOKEN_KEY) || '';
  $('token').addEventListener('input', () => {
    const t = $('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  });
  $('search').addEventListener('submit', (e) => { e.preventDefault(); search(null); });
  $('code').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); search(null); }
  });
  const params = new URLSearchParams(location.search);
  if (params.get('path')) $('path').value = params.get('path');
  if (params.get('q')) {
    $('code').value = params.get('q');
    const m = Number.parseInt(params.get('m') || '', 10);
    search(Number.isNaN(m) ? null : m);
  }
}

init();
