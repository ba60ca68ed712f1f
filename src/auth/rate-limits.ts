import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { SlidingWindowLimiter } from './sliding-window.limiter';

/** Answers a user may have streaming at once. */
export const MAX_RUNNING_PER_USER = 3;

/**
 * Per-user limits on what costs model money: `RATE_LIMIT_PER_MINUTE` messages (`user_message`,
 * `regenerate`, `solve`) in a sliding minute. Refused frames do not count.
 */
@Injectable()
export class RateLimits {
  private readonly messages: SlidingWindowLimiter;

  constructor(env: Environment) {
    this.messages = new SlidingWindowLimiter(env.RATE_LIMIT_PER_MINUTE, 60_000);
  }

  /** Counts one message of `userId`, or throws `rate_limited` with `retry_after_ms`. */
  consumeMessage(userId: string): void {
    const wait = this.messages.consume(userId);
    if (wait > 0) {
      throw new AppError('rate_limited', `too many messages; try again in ${Math.ceil(wait / 1000)} s`, { retry_after_ms: wait });
    }
  }

  /** Throws `rate_limited` when the user already has the most answers running at once. */
  checkRunning(running: number): void {
    if (running >= MAX_RUNNING_PER_USER) {
      throw new AppError('rate_limited', `at most ${MAX_RUNNING_PER_USER} answers may stream at once`, { retry_after_ms: 1000 });
    }
  }
}
