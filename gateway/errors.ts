// Errors the gateway answers with, in vLLM's OpenAI-style shape:
//
//   { "error": { "message": "...", "type": "BadRequestError", "param": "temperature", "code": "400" } }
//
// `type` is the HTTP error's class name, as vLLM does. `code` is the status
// as a decimal string: OpenAI's schema types `code` as a string (vLLM sends
// the number); the number itself is the HTTP status of the response, and
// `Number(code)` gives it back where there is no status line (an error event
// inside an SSE stream or on the WebSocket).
// An ApiError is the client's fault or a refusal; anything else that escapes
// a handler is a 500 with its message.

const TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'UnauthorizedError',
  403: 'ForbiddenError',
  404: 'NotFoundError',
  405: 'MethodNotAllowedError',
  413: 'RequestEntityTooLargeError',
  429: 'TooManyRequestsError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** uWS wants the whole status line: "400 Bad Request". */
export function statusLine(status: number): string {
  return `${status} ${REASONS[status] ?? 'Error'}`;
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(readonly status: number, message: string, readonly param: string | null = null) {
    super(message);
  }

  get body(): ErrorBody {
    return { error: { message: this.message, type: TYPES[this.status] ?? 'Error', param: this.param, code: String(this.status) } };
  }
}

export const badRequest = (message: string, param: string | null = null) => new ApiError(400, message, param);

/** Any thrown value as an ApiError (unknown errors become a 500 that keeps their message). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  // the engine cannot make progress (actors/front/engine-availability.ts)
  if (error instanceof Error && error.name === 'EngineUnavailableError') return new ApiError(503, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, message || 'internal error');
}
