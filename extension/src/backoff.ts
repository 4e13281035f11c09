// Bounded restart policy for the language server: exponential back-off between restarts, and a cap
// on crashes within a time window after which we stop and tell the user (a server that crashes on
// start would otherwise loop forever and flood the log). Pure, so it is unit tested with a fake clock.

export interface BackoffOptions {
  baseMs: number;      // delay before the first restart
  maxMs: number;       // longest delay
  maxCrashes: number;  // the crash within windowMs that makes us give up (maxCrashes - 1 restarts)
  windowMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30_000, maxCrashes: 5, windowMs: 180_000 };

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF, private readonly now: () => number = Date.now) {}

  /** Record a crash; the delay before restarting, or undefined to give up. */
  onCrash(): number | undefined {
    const t = this.now();
    this.crashes = this.crashes.filter((c) => t - c < this.opts.windowMs);
    this.crashes.push(t);
    const n = this.crashes.length;
    if (n >= this.opts.maxCrashes) return undefined;
    return Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** (n - 1));
  }

  /** A deliberate (re)start, e.g. after a settings change or the restart command: forget crashes. */
  reset(): void {
    this.crashes = [];
  }

  get recentCrashes(): number {
    return this.crashes.length;
  }

  /** The window crashes are counted in, for messages. */
  get windowMs(): number {
    return this.opts.windowMs;
  }
}
