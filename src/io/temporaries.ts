/**
 * Files are written to a temporary name beside their target and renamed into place
 * (`<target>.tmp-<pid>[-<n>]`, natively and here). A process killed mid-write leaves its temporary
 * behind; the next run writing the same target removes those whose process is gone, and never
 * one that a live process may still be writing. A run also holds `<target>.lock` while it writes
 * its outputs, so two runs never write the same output at once.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';  // exists, owned by someone else
  }
}

/** Removes the temporaries of `targets` left by processes that no longer run; returns their names. */
export function removeStaleTemporaries(targets: string[]): string[] {
  const removed: string[] = [];
  const byDir = new Map<string, string[]>();
  for (const t of targets) {
    const dir = path.dirname(path.resolve(t));
    byDir.set(dir, [...(byDir.get(dir) ?? []), `${path.basename(t)}.tmp-`]);
  }
  for (const [dir, prefixes] of byDir) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const prefix = prefixes.find((p) => name.startsWith(p));
      if (!prefix) continue;
      const pid = Number(/^(\d+)/.exec(name.slice(prefix.length))?.[1]);
      if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
      try {
        fs.rmSync(path.join(dir, name), { force: true });
        removed.push(name);
      } catch {
        /* another run removed it first */
      }
    }
  }
  return removed;
}

const heldHere = new Set<string>();

/**
 * Takes `<target>.lock` (created exclusively, holding this pid) for as long as a run writes
 * `target`; returns its release. A lock whose process is gone (killed) is taken over; a live
 * holder — another process, or another run in this one — is refused with LETHE_BUSY naming it.
 */
export function acquireOutputLock(target: string, what: string): () => void {
  const lock = `${path.resolve(target)}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      heldHere.add(lock);
      return () => {
        heldHere.delete(lock);
        fs.rmSync(lock, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new LetheError(ErrorCodes.IO, `${lock}: cannot create the lock (${(e as Error).message})`);
    }
    let holder = NaN;
    try {
      holder = Number(fs.readFileSync(lock, 'utf8').trim());
    } catch {
      continue;  // released meanwhile: try again
    }
    const busy = heldHere.has(lock) || (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder));
    if (busy)
      throw new LetheError(
        ErrorCodes.BUSY,
        `${target}: ${what} is already writing it (process ${holder === process.pid ? `${holder}, this one` : holder}; lock ${lock}). ` +
          'Wait for it to finish, or write to another path.',
      );
    // The holder is gone (or the lock is unreadable junk): take it over. Renaming it aside first
    // means two runs breaking the same stale lock cannot both delete a fresh one.
    const aside = `${lock}.stale-${process.pid}`;
    try {
      fs.renameSync(lock, aside);
      fs.rmSync(aside, { force: true });
    } catch {
      /* another run took it over first; the next attempt sees its lock */
    }
  }
  throw new LetheError(ErrorCodes.BUSY, `${target}: could not take ${lock} (other runs keep taking it); try again`);
}
