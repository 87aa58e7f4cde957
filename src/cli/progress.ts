import type { ProgressEvent } from '../job';

/** A one-line progress bar on a terminal's stderr; silent when stderr is not a TTY or in --json mode. */
export class ProgressBar {
  private started = Date.now();
  private last = 0;
  private active = false;
  constructor(private readonly label: string, private readonly enabled = Boolean(process.stderr.isTTY)) {}

  update = (ev: ProgressEvent): void => {
    if (!this.enabled || !ev.total) return;
    const now = Date.now();
    if (now - this.last < 100 && ev.step < ev.total) return;
    this.last = now;
    const frac = Math.min(1, ev.step / ev.total);
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.started) / 1000;
    const rate = ev.step / Math.max(elapsed, 1e-3);
    const eta = rate > 0 ? (ev.total - ev.step) / rate : 0;
    const extra = typeof ev.loss === 'number' ? ` loss ${ev.loss.toExponential(3)}` : '';
    process.stderr.write(
      `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${ev.step}/${ev.total} ${rate.toFixed(2)} it/s ETA ${eta.toFixed(0)}s${extra}   `,
    );
    this.active = true;
  };

  done(): void {
    if (this.active) process.stderr.write('\n');
    this.active = false;
  }
}

/** An AbortSignal fired by Ctrl-C (SIGINT) or SIGTERM, so a command can stop its native job cleanly. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
