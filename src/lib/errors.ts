import { errorCodes, type ErrorCode } from './error-codes.ts';

export type ErrorDetails = Record<string, unknown>;

/**
 * Every error ringmaster raises on purpose. Callers branch on `code`, never on the message.
 * `message` is safe to show to the client that caused it; internals go in `cause`.
 */
export class RingmasterError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: ErrorDetails; status?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RingmasterError';
    this.code = code;
    this.status = options.status ?? errorCodes[code].status;
    this.details = options.details;
  }
}

export function isRingmasterError(err: unknown, code?: ErrorCode): err is RingmasterError {
  return err instanceof RingmasterError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
