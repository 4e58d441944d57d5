/** The contract's error body: {"error": {"code", "message", "fields"?}}. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Record<string, string>;

  constructor(status: number, code: string, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

/** The login is over (refresh token rejected or revoked): the user must sign in again. */
export class SessionEndedError extends Error {
  constructor() {
    super('Your session has ended. Please sign in again.');
    this.name = 'SessionEndedError';
  }
}

export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // A proxy or a crash may answer with no JSON; the status still says enough.
  }
  const err = (body as { error?: { code?: unknown; message?: unknown; fields?: unknown } } | null)?.error;
  const code = typeof err?.code === 'string' ? err.code : `http_${res.status}`;
  const message = typeof err?.message === 'string' ? err.message : res.statusText || `Request failed (${res.status})`;
  const fields = err?.fields && typeof err.fields === 'object' ? (err.fields as Record<string, string>) : {};
  return new ApiError(res.status, code, message, fields);
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError || err instanceof SessionEndedError) return err.message;
  if (err instanceof TypeError) return 'Cannot reach the server. Check your connection.';
  return 'Something went wrong.';
}

/**
 * The fields an error is about. Validation errors list them; a conflict
 * ("that username is already taken") may only name the field in its message,
 * so the first candidate mentioned there is used.
 */
export function fieldErrors(err: ApiError, candidates: readonly string[]): Record<string, string> {
  if (Object.keys(err.fields).length) return err.fields;
  if (err.status !== 409) return {};
  const text = err.message.toLowerCase();
  const field = candidates.find((f) => text.includes(f.toLowerCase()));
  return field ? { [field]: err.message } : {};
}
