/** Shared CLI output helpers: errors as one line with their code, numbers humanised. */
import { isLetheError } from '../errors';

export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export function reportError(e: unknown): number {
  if (e instanceof CliExit) return e.exitCode;
  if (isLetheError(e)) {
    if (e.code === 'LETHE_CANCELLED') {
      process.stderr.write('lethe: LETHE_CANCELLED: stopped; nothing was written\n');
      return 130;
    }
    // One line: the code and the reason. Native errors carry `reason`; LetheError too.
    const reason = (e as { reason?: string }).reason ?? e.message;
    process.stderr.write(`lethe: ${e.code}: ${reason.split('\n')[0]}\n`);
    return 1;
  }
  process.stderr.write(`lethe: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
