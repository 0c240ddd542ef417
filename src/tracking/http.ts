/**
 * HTTP transport to an MLflow tracking server on Node's fetch: auth headers, JSON bodies,
 * error decoding and bounded retries with exponential backoff and jitter.
 */
import { isDiskFull, UserError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** About 30 s of trying before the server is taken as unreachable. */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 7,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
});

export interface HttpOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:5000 (a trailing slash is ignored). */
  trackingUri: string;
  /** Extra headers (Authorization is derived from env when absent). */
  headers?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  retry?: Partial<RetryPolicy>;
  /** Per-attempt timeout (default 60 s). */
  requestTimeoutMs?: number;
  /** Where the URI came from and what to do when it does not answer (for the error message). */
  origin?: { what: string; hint: string };
}

/** The server answered with an error (4xx, or 5xx after the retries). */
export class MlflowApiError extends UserError {
  override name = 'MlflowApiError';
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly errorCode: string,
    readonly serverMessage: string,
  ) {
    super(`MLflow ${endpoint} failed: ${errorCode} (HTTP ${status}): ${serverMessage}`);
  }
}

/** No answer from the server after every retry. */
export class MlflowUnreachableError extends UserError {
  override name = 'MlflowUnreachableError';
  constructor(
    readonly endpoint: string,
    readonly trackingUri: string,
    readonly lastReason: string,
    /** True when some attempt may have reached the server (the request may have been applied). */
    readonly uncertain: boolean,
    cause?: unknown,
    origin?: { what: string; hint: string },
  ) {
    super(
      `MLflow server ${trackingUri}${origin ? ` (from ${origin.what})` : ''} unreachable (${endpoint}): ${lastReason}`,
      {
        hint:
          origin?.hint ??
          'check that the server is running, or unset MLFLOW_TRACKING_URI to use the managed local server',
        cause,
      },
    );
  }
}

/** One failed attempt that is worth retrying. */
export class TransientError extends Error {
  override name = 'TransientError';
  constructor(
    message: string,
    /** False only when the request certainly never reached the server (connection refused). */
    readonly uncertain: boolean,
    readonly status?: number,
    readonly apiError?: MlflowApiError,
  ) {
    super(message);
  }
}

// Connection-level failures where no byte of the request reached the server.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function networkCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Auth headers from MLFLOW_TRACKING_TOKEN (Bearer) or MLFLOW_TRACKING_USERNAME/PASSWORD (Basic). */
export function authHeaders(env: NodeJS.ProcessEnv): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return { authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}` };
  if (env.MLFLOW_TRACKING_USERNAME || env.MLFLOW_TRACKING_PASSWORD) {
    const basic = Buffer.from(
      `${env.MLFLOW_TRACKING_USERNAME ?? ''}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`,
    ).toString('base64');
    return { authorization: `Basic ${basic}` };
  }
  return {};
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2; // "equal jitter": never zero, never in lockstep
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it succeeds, retrying TransientErrors with backoff. `attempt` receives
 * whether an earlier attempt may have reached the server, so non-idempotent calls can check
 * what was applied before sending again.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  describe: { endpoint: string; trackingUri: string; origin?: { what: string; hint: string } },
  attempt: (state: { index: number; uncertain: boolean }) => Promise<T>,
): Promise<T> {
  let uncertain = false;
  let last: TransientError | undefined;
  for (let index = 0; index < policy.attempts; index++) {
    if (index > 0) await sleep(backoffDelay(policy, index - 1));
    try {
      return await attempt({ index, uncertain });
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      last = error;
      uncertain ||= error.uncertain;
    }
  }
  if (last?.apiError) throw last.apiError; // the server did answer: report what it said
  throw new MlflowUnreachableError(
    describe.endpoint,
    describe.trackingUri,
    last?.message ?? 'no attempt made',
    uncertain,
    last,
    describe.origin,
  );
}

interface ErrorBody {
  error_code?: string;
  message?: string;
}

export class MlflowHttp {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  readonly origin?: { what: string; hint: string };
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(options: HttpOptions) {
    this.baseUrl = options.trackingUri.replace(/\/+$/, '');
    if (!/^https?:\/\//.test(this.baseUrl)) {
      throw new UserError(`MLflow tracking URI "${options.trackingUri}" is not an http(s) URL`, {
        hint: 'set MLFLOW_TRACKING_URI to a tracking server such as http://127.0.0.1:5000, or unset it to use the managed local server',
      });
    }
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.origin = options.origin;
    this.headers = { ...authHeaders(options.env ?? process.env), ...options.headers };
    this.timeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  /** One attempt; network failures, 429 and 5xx become TransientError. */
  async sendOnce(
    method: string,
    path: string,
    init: {
      body?: Blob | Uint8Array | string;
      json?: unknown;
      query?: Record<string, string | number | undefined>;
    } = {},
  ): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...this.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const code = networkCode(error) ?? (error as Error).name;
      throw new TransientError(
        `${method} ${path}: ${code} ${(error as Error).message}`,
        !NOT_SENT_CODES.has(code),
      );
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    let parsed: ErrorBody = {};
    try {
      parsed = JSON.parse(text) as ErrorBody;
    } catch {
      // not JSON (a proxy's HTML page, or a plain-text error)
    }
    const apiError = new MlflowApiError(
      `${method} ${path}`,
      response.status,
      parsed.error_code ?? `HTTP_${response.status}`,
      parsed.message ?? (text.slice(0, 500) || response.statusText),
    );
    // A server whose store is on a full disk answers 500 until space is freed: no retries.
    if (response.status >= 500 && isDiskFull(apiError)) throw apiError;
    if (response.status >= 500 || response.status === 429) {
      throw new TransientError(
        apiError.message,
        response.status !== 503 && response.status !== 429,
        response.status,
        apiError,
      );
    }
    throw apiError;
  }

  /** An idempotent request with retries; resolves to the decoded JSON body. */
  async json<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    endpoint: string,
    payload?: Record<string, unknown>,
  ): Promise<T> {
    const path = `/api/2.0/mlflow/${endpoint}`;
    const describe = { endpoint, trackingUri: this.baseUrl, origin: this.origin };
    return withRetries(this.retry, describe, async () => {
      const response =
        method === 'GET'
          ? await this.sendOnce(method, path, {
              query: payload as Record<string, string | number | undefined>,
            })
          : await this.sendOnce(method, path, { json: payload ?? {} });
      return (await response.json()) as T;
    });
  }

  /** POST that must not be applied twice: `attempt` decides what to send after an uncertain failure. */
  async once<T>(
    endpoint: string,
    attempt: (state: { index: number; uncertain: boolean }) => Promise<T>,
  ): Promise<T> {
    return withRetries(
      this.retry,
      { endpoint, trackingUri: this.baseUrl, origin: this.origin },
      attempt,
    );
  }
}
