/**
 * Files are written to a temporary name beside their target and renamed into place
 * (`<target>.tmp-<pid>[-<n>]`, natively and here). A process killed mid-write leaves its temporary
 * behind; the next run writing the same target removes those whose process is gone, and never
 * one that a live process may still be writing.
 */
import * as fs from 'fs';
import * as path from 'path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';  // exists, owned by someone else
  }
}

/** Removes the temporaries of `target` left by processes that no longer run; returns their names. */
export function removeStaleTemporaries(target: string): string[] {
  const dir = path.dirname(path.resolve(target));
  const prefix = `${path.basename(target)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      /* another run removed it first */
    }
  }
  return removed;
}
