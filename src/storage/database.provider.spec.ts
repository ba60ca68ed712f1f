import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { Environment } from '../config/environment';
import { openDatabase } from './database.provider';

/** SQLite's `synchronous` pragma as the open connection reports it (1 = NORMAL, 2 = FULL). */
async function synchronousOf(options?: Parameters<typeof openDatabase>[1]): Promise<number> {
  const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'chat-db-')), 'chat.db')}`;
  const db = await openDatabase(url, options);
  try {
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(db);
    return rows[0].synchronous;
  } finally {
    await db.destroy();
  }
}

describe('openDatabase (SQLite)', () => {
  it('commits without an fsync each by default (WAL + synchronous NORMAL)', async () => {
    expect(await synchronousOf()).toBe(1);
    expect(new Environment().SQLITE_SYNCHRONOUS).toBe('normal');
  });

  it('waits for fsync on every commit with SQLITE_SYNCHRONOUS=full', async () => {
    expect(await synchronousOf({ sqliteSynchronous: 'full' })).toBe(2);
  });

  it('rejects any other SQLITE_SYNCHRONOUS value', () => {
    const env = plainToInstance(Environment, { SQLITE_SYNCHRONOUS: 'off' });
    expect(validateSync(env).map((e) => e.property)).toEqual(['SQLITE_SYNCHRONOUS']);
  });
});
