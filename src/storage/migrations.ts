import { Kysely, Migration, MigrationProvider } from 'kysely';

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
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
