import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Runs a database write until it succeeds, waiting longer after each failure (200 ms doubling, at
 * most 2 s), for up to `maxWaitMs` of waiting in all: a database restarting under load comes back
 * within that, and the write is not lost. Past it the last error is thrown. `onFirstFailure` is told
 * once, so a long outage costs one log line per write, not one per try.
 */
export async function retryWrite<T>(write: () => Promise<T>, onFirstFailure: (error: unknown) => void, maxWaitMs = 30_000): Promise<T> {
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const wait = Math.min(200 * 2 ** attempt, 2000);
      if (waited + wait > maxWaitMs) throw error;
      if (attempt === 0) onFirstFailure(error);
      await sleep(wait);
      waited += wait;
    }
  }
}
