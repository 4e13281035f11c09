// What the diff editor shows for a match: the corpus source on the left, this file's lines on the
// right, from the server's `stacklens.evidence` answer. Pure: no `vscode` import, so it is unit tested.
import { Match } from './matches';

interface Side {
  text: string | null;
  firstLine: number;
  label: string;
  origin?: string | null;
  reason?: string | null;
}

/** The answer of the server command `stacklens.evidence` (docs/lsp.md). */
export interface EvidenceAnswer {
  error?: string;
  title?: string;
  match?: Match;
  query?: Side;
  source?: Side;
  evidence?: { renames?: Record<string, string> };
}

export interface DiffDocs {
  title: string;
  left: { path: string; text: string };
  right: { path: string; text: string };
}

function lastLine(side: Side): number {
  const text = side.text ?? '';
  const n = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  return side.firstLine + Math.max(n, 1) - 1;
}

function span(side: Side): string {
  const last = lastLine(side);
  return last === side.firstLine ? `line ${side.firstLine}` : `lines ${side.firstLine}-${last}`;
}

/** The two virtual documents and the editor title, or the message to show instead. `key` keeps
 * documents of different matches apart; each path ends in the source's file name, so both sides
 * get its language's colouring. */
export function diffDocs(answer: EvidenceAnswer | undefined, key: string): DiffDocs | string {
  if (!answer) return 'stacklens: the language server is not running.';
  if (answer.error) return `stacklens: ${answer.error}.`;
  const { query, source } = answer;
  if (!query || !source) return 'stacklens: the server sent no evidence for this match.';
  if (source.text === null || source.text === undefined) {
    return `stacklens: the source text is not available (${source.reason ?? 'no reason given'}).`;
  }
  const name = (source.label.split('/').pop() || 'source').replace(/[^\w.-]/g, '_');
  const renames = Object.entries(answer.evidence?.renames ?? {});
  const renamed = renames.length
    ? ` · renamed ${renames.slice(0, 3).map(([a, x]) => `${a} → ${x}`).join(', ')}${renames.length > 3 ? ', …' : ''}`
    : '';
  return {
    title: `${source.label} ${span(source)} ↔ this file ${span(query)}${renamed}`,
    left: { path: `/${key}/source/${name}`, text: source.text },
    right: { path: `/${key}/this-file/${name}`, text: query.text ?? '' },
  };
}
