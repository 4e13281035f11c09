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
const LOGGED = /^\d\d:\d\d:\d\dZ (ERROR|CRITICAL) (.*)$/;

/** One line naming the cause of a crash, or undefined when stderr says nothing useful. The last
 * exception of the last traceback wins, with the innermost file it was raised in; else the last
 * ERROR/CRITICAL log record; else the last non-empty line. */
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
    const m = LOGGED.exec(lines[i]);
    if (m) return m[2].trim();
  }
  const last = [...lines].reverse().find((l) => l.trim());
  return last?.trim();
}
