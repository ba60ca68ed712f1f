import { existsSync, mkdtempSync, statSync } from 'node:fs';
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
    expect(new Environment().SQLITE_CHECKPOINT_MS).toBe(1000);
  });

  it('waits for fsync on every commit with SQLITE_SYNCHRONOUS=full', async () => {
    expect(await synchronousOf({ sqliteSynchronous: 'full' })).toBe(2);
  });

  it('indexes only the answers still streaming, and no chat by its time alone (fewer pages per commit)', async () => {
    const db = await openDatabase(`sqlite:${join(mkdtempSync(join(tmpdir(), 'chat-db-')), 'chat.db')}`);
    try {
      const indexes = async (table: string) =>
        (await sql<{ name: string; partial: number }>`select name, partial from pragma_index_list(${table})`.execute(db)).rows;
      expect(await indexes('messages')).toContainEqual({ name: 'messages_streaming', partial: 1 });
      expect((await indexes('messages')).map((i) => i.name)).not.toContain('messages_status');
      expect((await indexes('chats')).map((i) => i.name)).not.toContain('chats_updated');
      // The start-up recovery and the dead-instance sweep read that index, not the table.
      const plan = await sql<{ detail: string }>`explain query plan update messages set status = 'interrupted' where status = 'streaming'`.execute(db);
      expect(plan.rows.map((r) => r.detail).join(' ')).toContain('messages_streaming');
    } finally {
      await db.destroy();
    }
  });

  it('creates the data folder 0700 and the database files 0600', async () => {
    const folder = join(mkdtempSync(join(tmpdir(), 'chat-db-')), 'data');
    const db = await openDatabase(`sqlite:${join(folder, 'chat.db')}`, { sqliteCheckpointMs: 0 });
    try {
      await sql`insert into server_settings (key, value) values ('probe', 'x')`.execute(db);
      const mode = (file: string) => statSync(join(folder, file)).mode & 0o777;
      expect(mode('.')).toBe(0o700);
      for (const file of ['chat.db', 'chat.db-wal', 'chat.db-shm']) expect([file, mode(file)]).toEqual([file, 0o600]);
    } finally {
      await db.destroy();
    }
  });

  it('rejects any other SQLITE_SYNCHRONOUS value', () => {
    const env = plainToInstance(Environment, { SQLITE_SYNCHRONOUS: 'off' });
    expect(validateSync(env).map((e) => e.property)).toEqual(['SQLITE_SYNCHRONOUS']);
  });
});

describe('WAL checkpoints in a worker thread (SQLite)', () => {
  const until = async (check: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!check() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
    return check();
  };

  /**
   * Opens a database, writes ~1 MB into its WAL (below SQLite's own automatic checkpoint of 1,000
   * pages, so only a worker copies it) and answers its file, the connection's autocheckpoint
   * setting and how much the database file grew.
   */
  async function fillWal(checkpointMs: number) {
    const file = join(mkdtempSync(join(tmpdir(), 'chat-db-')), 'chat.db');
    const db = await openDatabase(`sqlite:${file}`, { sqliteCheckpointMs: checkpointMs });
    const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    const before = statSync(file).size;
    await sql`create table filler (x text)`.execute(db);
    for (let i = 0; i < 100; i++) await sql`insert into filler values (${'x'.repeat(10_000)})`.execute(db);
    return { file, db, autocheckpoint: rows[0].wal_autocheckpoint, grown: () => statSync(file).size - before };
  }

  it('the app connection never checkpoints; the worker copies the WAL into the file, and the WAL is gone after destroy', async () => {
    const { file, db, autocheckpoint, grown } = await fillWal(50);
    expect(autocheckpoint).toBe(0);
    expect(await until(() => grown() > 500_000)).toBe(true);
    await db.destroy();
    expect(await until(() => !existsSync(`${file}-wal`))).toBe(true);
  });

  it("with 0 there is no worker: the WAL waits for SQLite's own checkpoint", async () => {
    const { db, autocheckpoint, grown } = await fillWal(0);
    expect(autocheckpoint).toBe(1000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(grown()).toBeLessThan(500_000);
    await db.destroy();
  });
});
