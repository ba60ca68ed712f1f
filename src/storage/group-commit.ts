import { Inject, Injectable } from '@nestjs/common';
import { type CompiledQuery, Kysely } from 'kysely';
import { sqliteConnectionOf } from './database.provider';
import type { Database } from './schema';
import type { SqliteConnection } from './sqlite-connection';

/** The statements of one write, compiled (`query.compile()`); they run in this order, all or none. */
export type Write = readonly CompiledQuery[];

interface Queued {
  write: Write;
  resolve: () => void;
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
 * A write is its statements compiled by Kysely (repositories build them as usual). On SQLite the
 * batch runs synchronously on the connection, under Kysely's lock on it, as one better-sqlite3
 * transaction: no await between statements (each costs a few microtask turns through Kysely's
 * executor). A write that fails makes the batch roll back; every write of it then runs again in a
 * transaction of its own, so only the failing one fails. (A writer thread with its own connection
 * was tried: on two cores it competes with the load for CPU and gained nothing; bench/findings.md.)
 *
 * PostgreSQL commits concurrently on its pool's connections: writes run at once, a write of several
 * statements in a transaction.
 *
 * One per database, provided by `StorageModule` and injected into every repository that writes, so
 * that their writes share batches (a spec or script that builds repositories by hand gives them one).
 */
@Injectable()
export class GroupCommit {
  /** SQLite's connection (undefined on PostgreSQL). */
  private readonly sqlite: SqliteConnection | undefined;
  private queue: Queued[] = [];

  constructor(@Inject(Kysely) private readonly db: Kysely<Database>) {
    this.sqlite = sqliteConnectionOf(db);
  }

  /** Runs the write's statements in one transaction; resolves once they are committed. */
  run(write: Write): Promise<void> {
    if (!this.sqlite) return this.runNow(write);
    return new Promise<void>((resolve, reject) => {
      if (!this.queue.length) setImmediate(() => void this.flush());
      this.queue.push({ write, resolve, reject });
    });
  }

  /** Resolves when every write asked for before this call is committed (or has failed). */
  async drain(): Promise<void> {
    if (this.sqlite) await this.run([]);
  }

  private async runNow(write: Write): Promise<void> {
    if (write.length === 1) {
      await this.db.executeQuery(write[0]);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      for (const query of write) await trx.executeQuery(query);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    const sqlite = this.sqlite!;
    const runAll = sqlite.transaction((writes: Write[]) => {
      for (const write of writes) for (const query of write) sqlite.prepare(query.sql).run(...(query.parameters as unknown[]));
    });
    // Kysely's lock on the one connection: no Kysely transaction is open around these statements.
    await this.db
      .connection()
      .execute(async () => {
        try {
          runAll(batch.map((queued) => queued.write));
        } catch (error) {
          if (batch.length === 1) return batch[0].reject(error);
          for (const queued of batch) {
            try {
              runAll([queued.write]);
              queued.resolve();
            } catch (alone) {
              queued.reject(alone);
            }
          }
          return;
        }
        for (const queued of batch) queued.resolve();
      })
      .catch((error: unknown) => batch.forEach((queued) => queued.reject(error)));
  }
}
