// Match objects (docs: DESIGN.md "Match object") as they arrive in the server's diagnostics, and the
// text we derive from them: labels, attribution comments. Pure, unit tested.

export interface MatchSource {
  repo: string | null;
  path: string;
  license: string | null;
  url: string | null;
  sha?: string | null;
}

export interface Match {
  kind: 'exact' | 'near';
  score: number;
  source: MatchSource;
  source_span: { start_line: number; end_line: number };
  query_span?: { start_line: number; end_line: number; start_char: number; end_char: number };
  matched_chars: number;
  /** How many corpus files hold the matched code (servers before 0.2 leave it out: 1). */
  occurrences?: number;
}

export const DIAGNOSTIC_SOURCE = 'stacklens';

function isMatch(x: unknown): x is Match {
  const m = x as Match;
  return !!m && typeof m === 'object' && !!m.source && typeof m.source.path === 'string' &&
    !!m.source_span && typeof m.source_span.start_line === 'number';
}

/** The match objects carried by a diagnostic's `data` (`{"matches": [...]}`), tolerating junk. */
export function matchesOf(data: unknown): Match[] {
  const raw = (data as { matches?: unknown } | undefined)?.matches;
  return Array.isArray(raw) ? raw.filter(isMatch) : [];
}

/** Whether the licence policy blocks a diagnostic's source: the server says so in `data.blocked`
 * (its severity is whatever the user chose, "hint" by default); older servers only used Error. */
export function blockedOf(data: unknown, isError: boolean): boolean {
  const blocked = (data as { blocked?: unknown } | undefined)?.blocked;
  return typeof blocked === 'boolean' ? blocked : isError;
}

export function sourceName(m: Match): string {
  return m.source.repo ? `${m.source.repo}/${m.source.path}` : m.source.path;
}

export function lines(m: Match): string {
  const { start_line: a, end_line: b } = m.source_span;
  return a === b ? `line ${a}` : `lines ${a}-${b}`;
}

export function licence(m: Match): string {
  return m.source.license ?? 'licence unknown';
}

/** "found in 1 file" / "found in 2,140 files". */
export function foundIn(m: Match): string {
  const n = m.occurrences ?? 1;
  return n === 1 ? 'found in 1 file' : `found in ${n.toLocaleString('en-US')} files`;
}

/** One line for lists: "acme/ring/ring.py lines 1-9 (MIT)". */
export function describe(m: Match): string {
  return `${sourceName(m)} ${lines(m)} (${licence(m)})`;
}

/** Line-comment syntax per VS Code language id; block comments where a language has no line form. */
const LINE_COMMENT: Record<string, string> = {};
for (const id of ['python', 'shellscript', 'ruby', 'perl', 'r', 'yaml', 'toml', 'dockerfile', 'makefile',
  'powershell', 'julia', 'elixir', 'nim', 'coffeescript', 'cmake']) LINE_COMMENT[id] = '#';
for (const id of ['javascript', 'typescript', 'javascriptreact', 'typescriptreact', 'java', 'c', 'cpp',
  'csharp', 'go', 'rust', 'kotlin', 'swift', 'scala', 'dart', 'php', 'groovy', 'objective-c', 'zig', 'jsonc',
  'solidity', 'proto3', 'verilog']) LINE_COMMENT[id] = '//';
for (const id of ['lua', 'sql', 'haskell', 'elm', 'ada', 'vhdl']) LINE_COMMENT[id] = '--';
for (const id of ['clojure', 'lisp', 'scheme', 'racket', 'elisp']) LINE_COMMENT[id] = ';;';
LINE_COMMENT['latex'] = '%';
LINE_COMMENT['erlang'] = '%';
LINE_COMMENT['matlab'] = '%';
LINE_COMMENT['vb'] = "'";
LINE_COMMENT['bat'] = 'REM';

const BLOCK_COMMENT: Record<string, [string, string]> = {
  html: ['<!--', '-->'], xml: ['<!--', '-->'], markdown: ['<!--', '-->'], vue: ['<!--', '-->'],
  css: ['/*', '*/'], scss: ['/*', '*/'], less: ['/*', '*/'], ocaml: ['(*', '*)'], fsharp: ['(*', '*)'],
};

export function commentLine(languageId: string, text: string): string {
  const line = LINE_COMMENT[languageId];
  if (line) return `${line} ${text}`;
  const block = BLOCK_COMMENT[languageId] ?? ['/*', '*/'];
  return `${block[0]} ${text} ${block[1]}`;
}

/** Attribution comment lines (without indentation or newlines), one per distinct source. */
export function attributionLines(languageId: string, matches: Match[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of matches) {
    const key = `${sourceName(m)}:${m.source_span.start_line}-${m.source_span.end_line}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const url = m.source.url ? ` ${m.source.url}` : '';
    out.push(commentLine(languageId, `Adapted from ${describe(m)}${url}`));
  }
  return out;
}

/** Status bar text for a file's match count. */
export function matchCountLabel(n: number): string {
  return n === 0 ? 'no matches' : n === 1 ? '1 match' : `${n} matches`;
}
