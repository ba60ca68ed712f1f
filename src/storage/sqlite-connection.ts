import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * The better-sqlite3 connection as Kysely's `SqliteDialect` sees it, with its statements kept.
 *
 * Kysely prepares every query anew; with better-sqlite3 that parse is a large share of a short
 * query's cost. Statements are kept by their SQL text (the `max` most recently used): Kysely runs one
 * query at a time on the connection and never iterates two results of one statement at once, and
 * `GroupCommit` runs its batches synchronously through the same `prepare`.
 */
export class SqliteConnection implements SqliteDatabase {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(
    /** The driver's connection (pragmas, the checkpointer, `transaction`). */
    readonly driver: BetterSqlite3.Database,
    private readonly max = 500,
  ) {}

  prepare(source: string): BetterSqlite3.Statement & SqliteStatement {
    let statement = this.statements.get(source);
    if (statement) {
      // Most recently used last: the first key is the one to drop.
      this.statements.delete(source);
    } else {
      statement = this.driver.prepare(source);
      if (this.statements.size >= this.max) this.statements.delete(this.statements.keys().next().value as string);
    }
    this.statements.set(source, statement);
    return statement as BetterSqlite3.Statement & SqliteStatement;
  }

  /** better-sqlite3's synchronous transaction (`BEGIN` … `COMMIT`, rolled back when `run` throws). */
  transaction<A extends unknown[]>(run: (...args: A) => void): (...args: A) => void {
    return this.driver.transaction(run);
  }

  close(): void {
    this.driver.close();
  }
}
