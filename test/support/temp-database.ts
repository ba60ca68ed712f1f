import { Test, type TestingModule } from '@nestjs/testing';
import { Kysely } from 'kysely';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ChatsRepository } from '../../src/storage/chats.repository';
import { openDatabase, sqlitePath } from '../../src/storage/database.provider';
import { GroupCommit } from '../../src/storage/group-commit';
import { MessagesRepository } from '../../src/storage/messages.repository';
import type { Database } from '../../src/storage/schema';
import { tempDatabaseUrl } from './databases';

/**
 * For each test of the suite: a fresh database (`tempDatabaseUrl`) opened by the app's own
 * `openDatabase` before it, destroyed after it (a SQLite file's folder removed). Read `db` in tests
 * and hooks, not at the suite's top level.
 */
export function useTempDatabase(): { readonly db: Kysely<Database> } {
  let db: Kysely<Database> | undefined;
  let dir: string | undefined;
  beforeEach(async () => {
    const url = tempDatabaseUrl();
    dir = url.startsWith('sqlite:') ? dirname(sqlitePath(url)) : undefined;
    db = await openDatabase(url);
  });
  afterEach(async () => {
    await db?.destroy();
    db = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get db() {
      if (!db) throw new Error('useTempDatabase: the database exists only during a test');
      return db;
    },
  };
}

/** The chats and messages repositories on `db` as StorageModule wires them: one GroupCommit shared by both. */
export function repositoriesOn(db: Kysely<Database>): Promise<TestingModule> {
  return Test.createTestingModule({
    providers: [{ provide: Kysely, useValue: db }, GroupCommit, ChatsRepository, MessagesRepository],
  }).compile();
}
