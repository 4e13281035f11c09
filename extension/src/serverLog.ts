// The server logs to stderr as "HH:MM:SSZ LEVEL logger: message" (lsp_server/main.py). The language
// client would tag every stderr line as [error]; this keeps each line's real level instead, and gives
// continuation lines (tracebacks) the level of the line they belong to. Pure, unit tested.

export type Level = 'debug' | 'info' | 'warn' | 'error';

const LINE = /^\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;
const LEVELS: Record<string, Level> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', ERROR: 'error', CRITICAL: 'error' };

export function classify(line: string, previous: Level): { level: Level; text: string } {
  const m = LINE.exec(line);
  if (m) return { level: LEVELS[m[1]], text: m[2] };
  // Not our format: a traceback line continues the record above; anything else (a library printing
  // to stderr) is shown as info rather than alarming the user.
  if (/^(Traceback |\s+File "|\s{2,}|\w+(Error|Exception)\b)/.test(line)) return { level: previous === 'info' || previous === 'debug' ? 'error' : previous, text: line };
  return { level: 'info', text: line };
}
