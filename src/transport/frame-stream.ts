import type { Observable, Subscription } from 'rxjs';

/** Where a stream's values go once the socket server takes it. */
export interface FrameSink {
  next(value: unknown): void;
  error(error: unknown): void;
  complete(): void;
}

/**
 * A frame handler's Observable result (after the interceptors), subscribed once. What it emits
 * before the socket server takes it (`drain`) waits here, in order; after that each value is passed
 * on as it comes.
 */
export class FrameStream {
  private queue: unknown[] | undefined = [];
  private sink?: FrameSink;
  private ending?: { failed: boolean; error?: unknown };
  private subscription?: Subscription;
  private cancelled = false;

  /**
   * Subscribes to `source` and settles on its first event: resolves to the stream at its first
   * value, rejects when it fails before any (so Nest's exception filters answer that error, as for a
   * thrown one), resolves to undefined when it completes empty.
   */
  static settle(source: Observable<unknown>): Promise<FrameStream | undefined> {
    return new Promise((resolve, reject) => {
      const stream = new FrameStream();
      let started = false;
      stream.subscription = source.subscribe({
        next: (value) => {
          if (!started) {
            started = true;
            resolve(stream);
          }
          stream.push(value);
        },
        error: (error: unknown) => (started ? stream.end(true, error) : reject(error)),
        complete: () => (started ? stream.end(false) : resolve(undefined)),
      });
    });
  }

  /** True once it completed, failed or was cancelled: nothing more comes. */
  get closed(): boolean {
    return this.ending !== undefined || this.cancelled;
  }

  /** Passes what came so far to `sink`, then each value as it comes, then the end. */
  drain(sink: FrameSink): void {
    const queue = this.queue ?? [];
    this.queue = undefined;
    this.sink = sink;
    for (const value of queue) sink.next(value);
    if (this.ending) this.finish(sink, this.ending);
  }

  /** Unsubscribes (the socket closed): an interval or a model stream behind it stops. */
  cancel(): void {
    this.cancelled = true;
    this.subscription?.unsubscribe();
  }

  private push(value: unknown): void {
    if (this.sink) this.sink.next(value);
    else this.queue?.push(value);
  }

  private end(failed: boolean, error?: unknown): void {
    this.ending = { failed, error };
    if (this.sink) this.finish(this.sink, this.ending);
  }

  private finish(sink: FrameSink, ending: { failed: boolean; error?: unknown }): void {
    if (ending.failed) sink.error(ending.error);
    else sink.complete();
  }
}
