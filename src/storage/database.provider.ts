import { Logger, type Provider } from '@nestjs/common';
import type SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Pool } from 'pg';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { redactUrl } from '../common/redact-url';
import { Environment } from '../config/environment';
import { migrationProvider } from './migrations';
import type { Database } from './schema';
import { startCheckpointer } from './sqlite-checkpointer';
import { SqliteConnection } from './sqlite-connection';

const logger = new Logger('Database');

/** `sqlite:<path>` → absolute file path (or `:memory:`). */
export function sqlitePath(url: string): string {
  const path = url.replace(/^sqlite:(\/\/)?/, '');
  if (!path) throw new Error(`DATABASE_URL "${url}" names no file`);
  return path === ':memory:' ? path : resolve(path);
}

const sqliteConnections = new WeakMap<Kysely<any>, SqliteConnection>();

/**
 * The SQLite connection under a Kysely made by `openDatabase` (undefined on PostgreSQL): what
 * `GroupCommit` runs its synchronous batches on. Kysely keeps its dialect's database to itself.
 */
export function sqliteConnectionOf(db: Kysely<any>): SqliteConnection | undefined {
  return sqliteConnections.get(db);
}

/**
 * better-sqlite3 is an optional peer dependency (a host on PostgreSQL need not build it): it is loaded
 * when SQLite is asked for. `module` is the seam a spec uses to simulate the package missing.
 */
export const sqliteDriver = { module: 'better-sqlite3' };

function loadSqlite(url: string): typeof SqliteDatabase {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional peer, loaded synchronously by a name the spec can change
    return require(sqliteDriver.module) as typeof SqliteDatabase;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    if (code !== 'MODULE_NOT_FOUND' || !message.includes(`'${sqliteDriver.module}'`)) throw error;
    throw new Error(
      `DATABASE_URL "${redactUrl(url)}" asks for SQLite, but the ${sqliteDriver.module} package is not installed: ` +
        `run \`npm install ${sqliteDriver.module}\` in your app, or set DATABASE_URL to postgres://…`,
    );
  }
}

export interface DatabaseOptions {
  /** SQLite's `synchronous` pragma (WAL mode): see `Environment.SQLITE_SYNCHRONOUS`. */
  sqliteSynchronous?: 'normal' | 'full';
  /** SQLite: WAL checkpoints in a worker thread this often; 0 = inside commits (SQLite's default). */
  sqliteCheckpointMs?: number;
}

export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<Kysely<Database>> {
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url);
  if (!url.startsWith('sqlite:')) {
    throw new Error(`DATABASE_URL "${redactUrl(url)}": use sqlite:<path> or postgres://…`);
  }
  const SqliteDriver = loadSqlite(url);
  const path = sqlitePath(url);
  if (path !== ':memory:') createPrivately(path);
  const sqlite = new SqliteDriver(path);
  sqlite.pragma('journal_mode = WAL');
  // better-sqlite3 is synchronous: with `full`, every commit blocks the event loop for an fsync.
  sqlite.pragma(`synchronous = ${options.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const checkpointMs = options.sqliteCheckpointMs ?? 0;
  if (path !== ':memory:' && checkpointMs > 0) startCheckpointer(sqlite, path, checkpointMs);
  // Kysely prepares through the connection's statement cache (see SqliteConnection).
  const connection = new SqliteConnection(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
  sqliteConnections.set(db, connection);
  await migrate(db);
  return db;
}

/**
 * Chats are private: a new data folder is 0700 and a new database file 0600 (SQLite gives its WAL and
 * shared-memory files the database file's mode). Existing folders and files keep theirs.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
}

/**
 * PostgreSQL through a pool. A `schema` query parameter (e.g. `?schema=tenant_a`) keeps all tables in
 * that schema, created when missing: several apps (or test runs) can share one database.
 */
async function openPostgres(url: string): Promise<Kysely<Database>> {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  if (schema && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`DATABASE_URL schema "${schema}" must be a plain lower-case identifier`);
  const pool = new Pool({
    connectionString: parsed.toString(),
    max: 10,
    connectionTimeoutMillis: 5000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle connection the server ends (a restart) is dropped and replaced on next use; without a
  // listener, pg's 'error' event would end the process.
  pool.on('error', (error) => logger.warn(`PostgreSQL connection lost: ${error.message}`));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (schema) await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
    else await sql`select 1`.execute(db);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`);
  }
  await migrate(db, schema ?? undefined);
  return db;
}

export async function migrate(db: Kysely<Database>, schema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  for (const result of results ?? []) {
    if (result.status === 'Success') logger.log(`migration ${result.migrationName} applied`);
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** The Kysely instance is its own injection token. */
export const databaseProvider: Provider = {
  provide: Kysely,
  inject: [Environment],
  useFactory: (env: Environment) => openDatabase(env.DATABASE_URL, { sqliteSynchronous: env.SQLITE_SYNCHRONOUS, sqliteCheckpointMs: env.SQLITE_CHECKPOINT_MS }),
};
