// Why did the server die? The last lines the server process wrote to stderr, kept per process, and
// the one line of them that names the cause (a Python exception and the file that raised it), so the
// crash message can say it instead of only "it stopped". Pure, unit tested.

/** The last `max` stderr lines of one server process; `ended` settles when its stderr closes. */
export class StderrTail {
  readonly lines: string[] = [];
  readonly ended: Promise<void>;
  private end!: () => void;

  constructor(private readonly max = 60) {
    this.ended = new Promise((r) => (this.end = r));
  }

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }

  close(): void {
    this.end();
  }
}

const EXCEPTION = /^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)|KeyboardInterrupt)\b:?/;
const FRAME = /^\s+File "([^"]+)", line (\d+)/;
const RECORD = /^\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/; // lsp_server/main.py's format

/** One line naming the cause of a crash, or undefined when stderr says nothing useful. The last
 * exception of the last traceback wins, with the innermost file it was raised in; else the last
 * ERROR/CRITICAL log record; else the last line that is not a log record (a server killed by a
 * signal ends its log with whatever it was doing, which is not why it died). */
export function crashReason(lines: readonly string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!EXCEPTION.test(lines[i])) continue;
    // The innermost frame is the last `File "..."` line above the exception, within its traceback.
    for (let j = i - 1; j >= 0 && !/^Traceback /.test(lines[j]); j--) {
      const m = FRAME.exec(lines[j]);
      if (m) return `${lines[i].trim()} (in ${m[1]}:${m[2]})`;
    }
    return lines[i].trim();
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = RECORD.exec(lines[i]);
    if (m && (m[1] === 'ERROR' || m[1] === 'CRITICAL')) return m[2].trim();
  }
  const last = [...lines].reverse().find((l) => l.trim() && !RECORD.test(l));
  return last?.trim();
}
