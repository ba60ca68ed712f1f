let last = 0;

/**
 * Now as an ISO-8601 string, strictly increasing within this process, so rows written in the same
 * millisecond (a user message and its answer) still sort in the order they were made.
 */
export function nowIso(): string {
  const now = Math.max(Date.now(), last + 1);
  last = now;
  return new Date(now).toISOString();
}
