import { ErrorCodes, LetheError } from './errors';
import { native, type JobOptions, type ProgressEvent } from './native';

export type { ProgressEvent };

export interface RunOptions {
  onProgress?: (ev: ProgressEvent) => void;
  signal?: AbortSignal;
}

/**
 * Runs a native job with progress and cancellation: an AbortSignal sets the job's native cancel
 * flag, which its loop checks every step; the promise then rejects with LETHE_CANCELLED.
 */
export async function runNativeJob<T>(start: (opts: JobOptions) => Promise<T>, { onProgress, signal }: RunOptions = {}): Promise<T> {
  if (signal?.aborted) throw new LetheError(ErrorCodes.CANCELLED, 'the job was cancelled before it started');
  const token = new (native().CancelToken)();
  const onAbort = () => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  let settled = false;
  try {
    return await start({
      cancel: token,
      // Progress posted just before the job settled can arrive after it: drop it.
      onProgress: onProgress ? (ev) => !settled && onProgress(ev) : undefined,
    });
  } finally {
    settled = true;
    signal?.removeEventListener('abort', onAbort);
  }
}
