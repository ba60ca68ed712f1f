import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The machine's PostgreSQL (trust auth), overridable for other setups. */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_SCHEMA_PREFIX = 'chattest_';

export const usingPostgres = (): boolean => process.env.TEST_DATABASE === 'postgres';

/** A fresh, empty database: a SQLite file in its own folder, or a PostgreSQL schema of its own. */
export function tempDatabaseUrl(): string {
  if (usingPostgres()) return `${TEST_POSTGRES_URL}?schema=${TEST_SCHEMA_PREFIX}${randomBytes(6).toString('hex')}`;
  return `sqlite:${join(mkdtempSync(join(tmpdir(), 'chat-test-')), 'chat.db')}`;
}
