import { Logger, Provider } from '@nestjs/common';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Environment } from '../config/environment';
import { migrationProvider } from './migrations';
import { Database } from './schema';

const logger = new Logger('Database');

/** `sqlite:<path>` → absolute file path (or `:memory:`). */
export function sqlitePath(url: string): string {
  const path = url.replace(/^sqlite:(\/\/)?/, '');
  if (!path) throw new Error(`DATABASE_URL "${url}" names no file`);
  return path === ':memory:' ? path : resolve(path);
}

export async function openDatabase(url: string): Promise<Kysely<Database>> {
  if (!url.startsWith('sqlite:')) {
    throw new Error(`DATABASE_URL "${url.replace(/\/\/[^@]*@/, '//***@')}": only sqlite:<path> is supported in this build`);
  }
  const path = sqlitePath(url);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db);
  return db;
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  for (const result of results ?? []) {
    if (result.status === 'Success') logger.log(`migration ${result.migrationName} applied`);
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** The Kysely instance is its own injection token. */
export const databaseProvider: Provider = {
  provide: Kysely,
  inject: [Environment],
  useFactory: (env: Environment) => openDatabase(env.DATABASE_URL),
};
