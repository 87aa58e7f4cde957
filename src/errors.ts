/** Stable error codes: every error Lethe throws carries one of these in `code`. */
export const ErrorCodes = {
  BAD_CHECKPOINT: 'LETHE_BAD_CHECKPOINT',
  BAD_ARGUMENT: 'LETHE_BAD_ARGUMENT',
  SHAPE_MISMATCH: 'LETHE_SHAPE_MISMATCH',
  CANCELLED: 'LETHE_CANCELLED',
  IO: 'LETHE_IO',
  /** Another run is writing the same output: wait for it or choose another path. */
  BUSY: 'LETHE_BUSY',
  DEVICE: 'LETHE_DEVICE',
  NON_FINITE: 'LETHE_NON_FINITE',
  OUT_OF_MEMORY: 'LETHE_OUT_OF_MEMORY',
  TORCH: 'LETHE_TORCH_ERROR',
  INTERNAL: 'LETHE_INTERNAL',
  NATIVE_MISSING: 'LETHE_NATIVE_MISSING',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error raised on the TypeScript side; native errors arrive as Error with the same `code`. */
export class LetheError extends Error {
  readonly code: ErrorCode;
  readonly reason: string;
  constructor(code: ErrorCode, reason: string) {
    super(`${code}: ${reason}`);
    this.name = 'LetheError';
    this.code = code;
    this.reason = reason;
  }
}

export function isLetheError(e: unknown): e is Error & { code: string; reason?: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('LETHE_');
}
