/**
 * When a failed GitHub request is worth another try, and after how long: GitHub's documented
 * behaviour (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
 * 5xx answers and dropped connections: exponential back-off with jitter. A secondary rate limit
 * (403/429 with `retry-after`, or GitHub's "secondary rate limit" message): wait what it says, when
 * that is short. The hourly limit (`x-ratelimit-remaining: 0`): never (it resets within the hour;
 * the error says when). Everything else (404, 401, 422, …): never.
 */

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First back-off; doubles with each retry. */
  baseMs: number;
  /** A secondary limit asking for a longer wait than this fails instead. */
  maxWaitMs: number;
}

/** GitHub's advice when a secondary limit comes without `retry-after`: wait at least a minute. */
const SECONDARY_FALLBACK_S = 60;

interface Failure {
  name?: string;
  status?: number;
  message?: string;
  response?: { status: number; headers: Record<string, string | undefined>; data?: unknown };
}

/** A secondary rate limit: the seconds GitHub asks to wait (its `retry-after`, else a minute); undefined when it is not one. */
export function secondaryLimitWait(status: number | undefined, headers: Record<string, string | undefined>, message: string): number | undefined {
  if (status !== 403 && status !== 429) return undefined;
  if (headers['x-ratelimit-remaining'] === '0') return undefined;
  const after = Number(headers['retry-after']);
  if (Number.isFinite(after) && after >= 0 && headers['retry-after'] !== undefined) return after;
  return status === 429 || /secondary rate/i.test(message) ? SECONDARY_FALLBACK_S : undefined;
}

/** How long to wait before retry number `attempt + 1`, or undefined to give up now. */
export function retryDelay(error: unknown, attempt: number, policy: RetryPolicy, random = Math.random): number | undefined {
  if (attempt >= policy.retries) return undefined;
  const e = error as Failure;
  if (e?.name === 'AbortError') return undefined;
  const backoff = () => Math.round(policy.baseMs * 2 ** attempt * (1 + random()));
  if (!e?.response) return backoff();
  const { status, headers } = e.response;
  const data = e.response.data as { message?: unknown } | undefined;
  const secondary = secondaryLimitWait(status, headers, typeof data?.message === 'string' ? data.message : '');
  if (secondary !== undefined) {
    const ms = secondary * 1000;
    return ms <= policy.maxWaitMs ? ms : undefined;
  }
  if (status >= 500) return backoff();
  return undefined;
}
