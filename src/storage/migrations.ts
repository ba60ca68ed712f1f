import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';
import { isPostgres } from './dialect';

/** Migrations in code (no files to find at run time, so they work from `dist/` and in tests alike). */
const migrations: Record<string, Migration> = {
  '0001_chats_and_messages': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('chats')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('messages')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('chat_id', 'varchar(36)', (c) => c.notNull().references('chats.id').onDelete('cascade'))
        .addColumn('role', 'varchar(16)', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('reasoning', 'text')
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('model', 'varchar(128)')
        .addColumn('usage', 'text')
        .addColumn('error_code', 'varchar(64)')
        .addColumn('request_id', 'varchar(256)')
        .addColumn('seq', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('messages_chat_created').on('messages').columns(['chat_id', 'created_at']).execute();
      await db.schema.createIndex('messages_status').on('messages').column('status').execute();
      await db.schema.createIndex('chats_updated').on('chats').column('updated_at').execute();
    },
  },
  '0002_accounts': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('username', 'varchar(64)', (c) => c.notNull())
        .addColumn('username_key', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      // Chats belong to a user; rows made before accounts belong to the single local user.
      await db.schema
        .alterTable('chats')
        .addColumn('user_id', 'varchar(36)', (c) => c.notNull().defaultTo('local'))
        .execute();
      await db.schema.createIndex('chats_user_updated').on('chats').columns(['user_id', 'updated_at']).execute();
    },
  },
  '0003_solver_runs': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('solver_runs')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(36)', (c) => c.notNull().defaultTo('local'))
        .addColumn('issue_url', 'text', (c) => c.notNull())
        .addColumn('repo', 'varchar(256)', (c) => c.notNull())
        .addColumn('issue_number', 'integer', (c) => c.notNull())
        .addColumn('issue_title', 'text')
        .addColumn('open_pr', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('stage', 'varchar(16)', (c) => c.notNull())
        .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('stages', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('summary', 'text')
        .addColumn('files', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('patch', 'text')
        .addColumn('applies', 'integer')
        .addColumn('pr_url', 'text')
        .addColumn('error_code', 'varchar(64)')
        .addColumn('error_message', 'text')
        .addColumn('usage', 'text')
        .addColumn('request_id', 'varchar(256)')
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('solver_runs_user_created').on('solver_runs').columns(['user_id', 'created_at']).execute();
      await db.schema.createIndex('solver_runs_status').on('solver_runs').column('status').execute();
    },
  },
  '0004_chat_features': {
    async up(db: Kysely<any>) {
      // Regenerate: an answer that was replaced stays readable, hidden from the chat's main line.
      await db.schema.alterTable('messages').addColumn('replaced_by', 'varchar(36)').execute();
      await db.schema.alterTable('messages').addColumn('previous_versions', 'text').execute();
      await db.schema.alterTable('messages').addColumn('attachments', 'text').execute();
      await db.schema
        .createTable('files')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('shares')
        .addColumn('token', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('chat_id', 'varchar(36)', (c) => c.notNull().references('chats.id').onDelete('cascade'))
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('shares_chat').on('shares').column('chat_id').execute();
      if (isPostgres(db)) {
        // Full-text search (PostgreSQL): generated tsvector columns with GIN indexes.
        await sql`ALTER TABLE messages ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED`.execute(db);
        await sql`ALTER TABLE chats ADD COLUMN title_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED`.execute(db);
        await sql`CREATE INDEX messages_content_tsv ON messages USING gin (content_tsv)`.execute(db);
        await sql`CREATE INDEX chats_title_tsv ON chats USING gin (title_tsv)`.execute(db);
        return;
      }
      // Full-text search (SQLite FTS5), kept in step by triggers.
      await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(content, message_id UNINDEXED, chat_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')`.execute(
        db,
      );
      await sql`CREATE VIRTUAL TABLE chats_fts USING fts5(title, chat_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')`.execute(db);
      await sql`INSERT INTO messages_fts (content, message_id, chat_id) SELECT content, id, chat_id FROM messages`.execute(db);
      await sql`INSERT INTO chats_fts (title, chat_id) SELECT title, id FROM chats`.execute(db);
      await sql`CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (content, message_id, chat_id) VALUES (new.content, new.id, new.chat_id); END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        UPDATE messages_fts SET content = new.content WHERE message_id = new.id; END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE message_id = old.id; END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
        INSERT INTO chats_fts (title, chat_id) VALUES (new.title, new.id); END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats BEGIN
        UPDATE chats_fts SET title = new.title WHERE chat_id = new.id; END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
        DELETE FROM chats_fts WHERE chat_id = old.id; END`.execute(db);
    },
  },
  '0005_instances': {
    async up(db: Kysely<any>) {
      // Which instance runs a streaming answer, so the others can tell when it died.
      await db.schema.alterTable('messages').addColumn('instance_id', 'varchar(36)').execute();
    },
  },
  '0006_fts_by_rowid': {
    async up(db: Kysely<any>) {
      if (isPostgres(db)) return;
      // The first triggers found rows by an UNINDEXED column (a scan of the whole index on every
      // snapshot). Index rows now share the message's rowid, and streaming snapshots are not indexed:
      // an answer becomes searchable when it ends.
      for (const trigger of ['messages_fts_insert', 'messages_fts_update', 'messages_fts_delete', 'chats_fts_insert', 'chats_fts_update', 'chats_fts_delete']) {
        await sql`DROP TRIGGER IF EXISTS ${sql.id(trigger)}`.execute(db);
      }
      await sql`DROP TABLE IF EXISTS messages_fts`.execute(db);
      await sql`DROP TABLE IF EXISTS chats_fts`.execute(db);
      await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(content, message_id UNINDEXED, chat_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')`.execute(
        db,
      );
      await sql`CREATE VIRTUAL TABLE chats_fts USING fts5(title, chat_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')`.execute(db);
      await sql`INSERT INTO messages_fts (rowid, content, message_id, chat_id) SELECT rowid, content, id, chat_id FROM messages`.execute(db);
      await sql`INSERT INTO chats_fts (rowid, title, chat_id) SELECT rowid, title, id FROM chats`.execute(db);
      await sql`CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content, message_id, chat_id) VALUES (new.rowid, new.content, new.id, new.chat_id); END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages WHEN new.status != 'streaming' BEGIN
        UPDATE messages_fts SET content = new.content WHERE rowid = new.rowid; END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE rowid = old.rowid; END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
        INSERT INTO chats_fts (rowid, title, chat_id) VALUES (new.rowid, new.title, new.id); END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats BEGIN
        UPDATE chats_fts SET title = new.title WHERE rowid = new.rowid; END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
        DELETE FROM chats_fts WHERE rowid = old.rowid; END`.execute(db);
    },
  },
  '0007_search_queue': {
    async up(db: Kysely<any>) {
      if (isPostgres(db)) return;
      // FTS5 work inside every commit of a turn (tokenizing, segment writes) was about a third of
      // the time a turn spent in SQLite. A message that becomes final now only queues its rowid;
      // `MessagesRepository.flushSearchIndex` indexes the queue in one transaction (FTS5 is far
      // cheaper in batches), every SEARCH_INDEX_INTERVAL_MS and before every search.
      await sql`CREATE TABLE IF NOT EXISTS messages_fts_pending (id INTEGER PRIMARY KEY)`.execute(db);
      for (const trigger of ['messages_fts_insert', 'messages_fts_update', 'messages_fts_delete']) {
        await sql`DROP TRIGGER IF EXISTS ${sql.id(trigger)}`.execute(db);
      }
      await sql`CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.status != 'streaming' BEGIN
        INSERT OR IGNORE INTO messages_fts_pending (id) VALUES (new.rowid); END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages WHEN new.status != 'streaming' BEGIN
        INSERT OR IGNORE INTO messages_fts_pending (id) VALUES (new.rowid); END`.execute(db);
      await sql`CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE rowid = old.rowid;
        DELETE FROM messages_fts_pending WHERE id = old.rowid; END`.execute(db);
    },
  },
  '0008_omitted_turns': {
    async up(db: Kysely<any>) {
      // How many older turns an answer's model request left out (CONTEXT_TOKENS); null before this.
      await db.schema.alterTable('messages').addColumn('omitted_turns', 'integer').execute();
    },
  },
  '0009_chat_search_queue': {
    async up(db: Kysely<any>) {
      if (isPostgres(db)) return;
      // As 0007 for messages: a new or renamed chat queues its rowid; the title is indexed in the batch.
      await sql`CREATE TABLE IF NOT EXISTS chats_fts_pending (id INTEGER PRIMARY KEY)`.execute(db);
      for (const trigger of ['chats_fts_insert', 'chats_fts_update', 'chats_fts_delete']) {
        await sql`DROP TRIGGER IF EXISTS ${sql.id(trigger)}`.execute(db);
      }
      await sql`CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
        INSERT OR IGNORE INTO chats_fts_pending (id) VALUES (new.rowid); END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats BEGIN
        INSERT OR IGNORE INTO chats_fts_pending (id) VALUES (new.rowid); END`.execute(db);
      await sql`CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
        DELETE FROM chats_fts WHERE rowid = old.rowid;
        DELETE FROM chats_fts_pending WHERE id = old.rowid; END`.execute(db);
    },
  },
  '0010_fewer_index_pages': {
    async up(db: Kysely<any>) {
      // Each index a row is in is one more page in the commit that writes the row (a new turn's
      // commit wrote 11-14 pages of WAL, an answer's end 3). `chats_updated` served no query (a user's
      // chats are listed through chats_user_updated); `messages_status` held every message to find
      // the few still streaming: now only those are indexed (keyed by instance for the dead-instance
      // sweep), so a finished message leaves the index instead of moving within it.
      await sql`DROP INDEX IF EXISTS chats_updated`.execute(db);
      await sql`DROP INDEX IF EXISTS messages_status`.execute(db);
      await sql`CREATE INDEX messages_streaming ON messages (instance_id) WHERE status = 'streaming'`.execute(db);
    },
  },
  '0011_finish_reason': {
    async up(db: Kysely<any>) {
      // Why the model stopped (`length`, `content_filter`, …): a page tells a cut-short answer apart.
      await db.schema.alterTable('messages').addColumn('finish_reason', 'varchar(32)').execute();
    },
  },
  '0012_server_settings': {
    async up(db: Kysely<any>) {
      // Switches the admin changes from the page (sign-up open or closed), shared by every instance.
      await db.schema
        .createTable('server_settings')
        .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0013_model_calls': {
    async up(db: Kysely<any>) {
      // The usage of model calls that are not answers (a chat's generated title): /api/usage counts them.
      await db.schema
        .createTable('model_calls')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('purpose', 'varchar(32)', (c) => c.notNull())
        .addColumn('usage', 'text', (c) => c.notNull())
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('model_calls_user').on('model_calls').column('user_id').execute();
    },
  },
  '0014_search_after_stream': {
    async up(db: Kysely<any>) {
      // PostgreSQL computed a message's search vector (and added its words to the GIN index) on every
      // write of its text, so an answer's every snapshot (about one a second) indexed all its text so
      // far again: O(n²) in the answer's length, 0.29 vs 0.04 ms per snapshot of 40 words here. Like
      // SQLite's search queue (0007), a streaming message is indexed once, when it ends. PostgreSQL 15
      // cannot change a generated column's expression: the column (and its index) is made again,
      // which rewrites the table once.
      if (!isPostgres(db)) return;
      await sql`ALTER TABLE messages DROP COLUMN content_tsv`.execute(db);
      await sql`ALTER TABLE messages ADD COLUMN content_tsv tsvector
        GENERATED ALWAYS AS (CASE WHEN status = 'streaming' THEN NULL ELSE to_tsvector('simple', content) END) STORED`.execute(db);
      await sql`CREATE INDEX messages_content_tsv ON messages USING gin (content_tsv)`.execute(db);
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
