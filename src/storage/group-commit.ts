import { Kysely } from 'kysely';
import { isPostgres } from './database.provider';
import { Database } from './schema';

/** Writes only: a write may run twice (see `GroupCommit.run`). */
export type Write<T> = (db: Kysely<Database>) => Promise<T>;

interface Queued {
  write: Write<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite: the writes asked for in one turn of the event loop (the turns that 500
 * users start at once, the answers that end together) share one transaction and so one commit. A
 * commit is most of a small write's cost in SQLite: it appends every page it changed to the WAL,
 * and writes in one commit share their pages (the tables' and indexes' last pages, the search
 * queue). Alone, a write waits for the end of the current turn of the event loop (`setImmediate`),
 * not for a timer.
 *
 * A write that fails makes the shared transaction roll back; every write of that batch then runs
 * again in a transaction of its own, so only the failing one fails. A write therefore holds
 * database statements only, no other side effect.
 *
 * PostgreSQL commits concurrently on its pool's connections: writes run at once, each in a
 * transaction when `atomic`.
 */
export class GroupCommit {
  private static readonly byDatabase = new WeakMap<Kysely<Database>, GroupCommit>();

  /** The one group commit of a database (repositories of the same database share it). */
  static of(db: Kysely<Database>): GroupCommit {
    let group = GroupCommit.byDatabase.get(db);
    if (!group) GroupCommit.byDatabase.set(db, (group = new GroupCommit(db)));
    return group;
  }

  private readonly batching: boolean;
  private queue: Queued[] = [];

  private constructor(private readonly db: Kysely<Database>) {
    this.batching = !isPostgres(db);
  }

  /**
   * Runs `write` and resolves once it is committed. `atomic`: the write's statements need one
   * transaction (SQLite always gives it one; PostgreSQL only when asked).
   */
  run<T>(write: Write<T>, atomic = false): Promise<T> {
    if (!this.batching) return atomic ? this.db.transaction().execute(write) : write(this.db);
    return new Promise<T>((resolve, reject) => {
      if (!this.queue.length) setImmediate(() => void this.flush());
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** Resolves when every write asked for before this call is committed (or has failed). */
  async drain(): Promise<void> {
    if (this.batching) await this.run(async () => undefined);
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    let results: unknown[];
    try {
      results = await this.db.transaction().execute(async (trx) => {
        const values: unknown[] = [];
        for (const queued of batch) values.push(await queued.write(trx));
        return values;
      });
    } catch (error) {
      if (batch.length === 1) return batch[0].reject(error);
      for (const queued of batch) {
        await this.db.transaction().execute(queued.write).then(queued.resolve, queued.reject);
      }
      return;
    }
    batch.forEach((queued, i) => queued.resolve(results[i]));
  }
}
