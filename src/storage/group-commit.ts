import { Inject, Injectable } from '@nestjs/common';
import { CompiledQuery, Kysely } from 'kysely';
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

/** Writes in one PostgreSQL round trip at most (a bound on the query's size). */
const PG_BATCH_MAX = 200;
/**
 * Batches on their way at once (each on its own pooled connection; the pool's other connections
 * serve reads). One at a time made every batch wait a whole turn of a busy event loop after the one
 * before it: 500 turns at once took 1.5x as long to their first piece.
 */
const PG_BATCHES_IN_FLIGHT = 4;

/**
 * A value as PostgreSQL's extended protocol would bind it (pg sends every parameter as untyped
 * text): a quoted literal, escaped (`E''`, so whatever standard_conforming_strings says), or NULL.
 * Undefined for what has no such form here (arrays, buffers, a NUL character, non-finite numbers).
 */
function pgLiteral(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'NULL';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    text = String(value);
  } else if (typeof value === 'bigint' || typeof value === 'boolean') text = String(value);
  else if (value instanceof Date) text = value.toISOString();
  else return undefined;
  if (text.includes('\0')) return undefined;
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * A statement with its values inlined. An INSERT of one row (as Kysely compiles `values(row)`) is kept
 * as its head and its row too, so that a run of such inserts into the same columns can go as one
 * statement of many rows (`batchText`).
 */
interface Inlined {
  text: string;
  insert?: { head: string; row: string };
}

/** `insert into "table" ("a", "b", …) values ` then `($1, $2, …)`, nothing after. */
const INSERT_ONE_ROW = /^(insert into "\w+" \("\w+"(?:, "\w+")*\) values )(\(\$\d+(?:, \$\d+)*\))$/;

/** The write's statements with their values inlined, or undefined when one cannot be. */
function pgInline(write: Write): Inlined[] | undefined {
  const statements: Inlined[] = [];
  for (const query of write) {
    const literals = (query.parameters as unknown[]).map(pgLiteral);
    if (literals.some((literal) => literal === undefined)) return undefined;
    const bind = (sql: string) => sql.replace(/\$(\d+)/g, (placeholder, n: string) => literals[Number(n) - 1] ?? placeholder);
    const insert = INSERT_ONE_ROW.exec(query.sql);
    statements.push({ text: bind(query.sql), insert: insert ? { head: insert[1], row: bind(insert[2]) } : undefined });
  }
  return statements;
}

/**
 * The statements as one text, in their order; consecutive one-row inserts with the same head (a
 * turn's two messages, the rows of turns asked for one after another) as one insert of their rows.
 * Nothing moves past another statement, so what one depends on still runs before it; PostgreSQL
 * plans and starts one statement instead of many (with the writes of 60 turns in one query, their
 * inserts and touches took 0.11 ms per turn of PostgreSQL instead of 0.16-0.21: bench in the commit).
 */
function batchText(statements: Iterable<Inlined>): string {
  const out: string[] = [];
  let head: string | undefined;
  let rows: string[] = [];
  const endRun = () => {
    if (head !== undefined) out.push(head + rows.join(', '));
    head = undefined;
    rows = [];
  };
  for (const statement of statements) {
    if (statement.insert && statement.insert.head === head) {
      rows.push(statement.insert.row);
      continue;
    }
    endRun();
    if (statement.insert) {
      head = statement.insert.head;
      rows = [statement.insert.row];
    } else out.push(statement.text);
  }
  endRun();
  return out.join(';\n');
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
 * On PostgreSQL the cost is the round trip: each statement is a socket write that wakes a backend
 * and a reply that wakes the event loop (on this VM ~0.5 ms of CPU per statement, more than the
 * statement; bench --scale in the commit). The writes of a turn of the event loop go to the server
 * as ONE simple-protocol query (their statements joined with `;`, values inlined as quoted literals,
 * exactly as the extended protocol sends them: untyped text; consecutive one-row inserts into the
 * same columns as one insert of their rows), which PostgreSQL runs as one implicit transaction; a
 * few batches may be on their way at once (writes that depend on another, such as an answer's end
 * on its row, are asked for only once that one is committed).
 * A write with a value that cannot be written as a literal (an array, a buffer) runs alone as before;
 * a failed batch runs every write again on its own, so only the failing one fails.
 *
 * One per database, provided by `StorageModule` and injected into every repository that writes, so
 * that their writes share batches (a spec or script that builds repositories by hand gives them one).
 */
@Injectable()
export class GroupCommit {
  /** SQLite's connection (undefined on PostgreSQL). */
  private readonly sqlite: SqliteConnection | undefined;
  private queue: Queued[] = [];
  /** PostgreSQL: writes waiting for the next round trip, with their statements inlined. */
  private pgQueue: Array<Queued & { statements: Inlined[] }> = [];
  private pgScheduled = false;
  private pgInFlight = 0;

  constructor(@Inject(Kysely) private readonly db: Kysely<Database>) {
    this.sqlite = sqliteConnectionOf(db);
  }

  /** Runs the write's statements in one transaction; resolves once they are committed. */
  run(write: Write): Promise<void> {
    if (!this.sqlite) {
      const statements = pgInline(write);
      if (statements === undefined) return this.runNow(write);
      return new Promise<void>((resolve, reject) => {
        this.pgQueue.push({ write, statements, resolve, reject });
        this.schedulePg();
      });
    }
    return new Promise<void>((resolve, reject) => {
      if (!this.queue.length) setImmediate(() => void this.flush());
      this.queue.push({ write, resolve, reject });
    });
  }

  /** Resolves when every write asked for before this call is committed (or has failed). */
  async drain(): Promise<void> {
    await this.run([]);
  }

  private schedulePg(): void {
    if (this.pgScheduled || this.pgInFlight >= PG_BATCHES_IN_FLIGHT || !this.pgQueue.length) return;
    this.pgScheduled = true;
    setImmediate(() => void this.flushPg());
  }

  /** One round trip for the waiting writes (one implicit transaction); alone each, should it fail. */
  private async flushPg(): Promise<void> {
    this.pgScheduled = false;
    const batch = this.pgQueue.splice(0, PG_BATCH_MAX);
    this.pgInFlight += 1;
    try {
      const text = batchText(batch.flatMap((queued) => queued.statements));
      try {
        if (text) await this.db.executeQuery(CompiledQuery.raw(text));
      } catch (error) {
        if (batch.length === 1) return batch[0].reject(error);
        for (const queued of batch) await this.runNow(queued.write).then(queued.resolve, queued.reject);
        return;
      }
      for (const queued of batch) queued.resolve();
    } finally {
      this.pgInFlight -= 1;
      this.schedulePg();
    }
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
