import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, sqliteDriver } from './database.provider';

/** better-sqlite3 is an optional peer: a host without it gets a sentence, not a stack from `require`. */
describe('openDatabase without better-sqlite3 installed', () => {
  const installed = sqliteDriver.module;
  afterEach(() => (sqliteDriver.module = installed));

  it('says what to install when SQLite is asked for, and creates no file', async () => {
    sqliteDriver.module = 'better-sqlite3-not-installed'; // a real require that finds nothing
    const dir = join(mkdtempSync(join(tmpdir(), 'chat-nodriver-')), 'data');
    await expect(openDatabase(`sqlite:${join(dir, 'chat.db')}`)).rejects.toThrow(
      `asks for SQLite, but the better-sqlite3-not-installed package is not installed: run \`npm install better-sqlite3-not-installed\` in your app, or set DATABASE_URL to postgres://…`,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('loads the installed driver as before', async () => {
    const db = await openDatabase('sqlite::memory:');
    await db.destroy();
  });
});
