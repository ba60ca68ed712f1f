import { Injectable } from '@nestjs/common';
import DataLoader from 'dataloader';
import { CompiledQuery, Kysely, Selectable, sql } from 'kysely';
import { nowIso } from '../common/clock';
import { GroupCommit } from './group-commit';
import { type ContextMessage, insertMessage, type Message, type MessageRow, toContextMessage } from './messages.repository';
import { isPostgres } from './dialect';
import { PreparedStatements } from './prepared';
import { ChatsTable, Database } from './schema';

/** A chat as stored: its settings are JSON text. Only repositories see it. */
type ChatRow = Selectable<ChatsTable>;

/** A chat's own model settings, sent with each of its turns. */
export interface ChatSettings {
  model?: string;
  thinking?: boolean;
  temperature?: number;
  max_tokens?: number;
  system_prompt?: string;
}

/** A chat: the stored row with its settings parsed. */
export interface Chat extends Omit<ChatRow, 'settings'> {
  settings: ChatSettings;
}

/** Exactly the schema's columns: PostgreSQL adds a generated search column (`title_tsv`) that rows must not carry. */
const CHAT_COLUMNS = ['id', 'user_id', 'title', 'settings', 'created_at', 'updated_at'] as const satisfies readonly (keyof ChatsTable)[];
/** The chat's columns joined to each of its messages, but its settings (see findOwnedWithContext). */
const JOINED_CHAT_COLUMNS = CHAT_COLUMNS.filter((column) => column !== 'settings').map((column) => `chats.${column}` as const);

/** A context message's columns as `findOwnedWithContext` joins them to its chat (null: the chat has none). */
interface ContextJoin {
  m_id: string | null;
  m_role: MessageRow['role'] | null;
  m_content: string | null;
  m_status: MessageRow['status'] | null;
  m_attachments: MessageRow['attachments'] | null;
}

/** A chat asked for by its owner. */
interface OwnedKey {
  id: string;
  userId: string;
}

/** A chat with its current messages as a model request needs them. */
export interface OwnedWithContext {
  chat: Chat;
  context: ContextMessage[];
}

/**
 * Chats read in one statement at most (PostgreSQL, reads asked for in the same turn of the event
 * loop): a bound on the statement's size, and on the prepared shapes (one per number of chats).
 */
const OWNED_READ_BATCH = 64;

/** The owner of a chat whose import is still being written: not an id any user has here (uuids, `local`). */
export const IMPORTING = '(import in progress)';
/** An import still unfinished after this long was cut short (the server stopped): its rows are removed. */
const ABANDONED_IMPORT_MS = 3_600_000;
/** Rows an import writes per transaction: a few ms of SQLite each (bench in the commit). */
const IMPORT_BATCH_ROWS = 500;

export interface NewChat {
  id: string;
  userId: string;
  title: string;
  settings?: ChatSettings;
}

/** A new chat (timestamped now). */
export function newChat(chat: NewChat): Chat {
  const now = nowIso();
  return { id: chat.id, user_id: chat.userId, title: chat.title, settings: chat.settings ?? {}, created_at: now, updated_at: now };
}

const toRow = (chat: Chat): ChatRow => ({ ...chat, settings: JSON.stringify(chat.settings) });

function toChat(row: ChatRow): Chat;
function toChat(row: ChatRow | undefined): Chat | undefined;
function toChat(row: ChatRow | undefined): Chat | undefined {
  return row && { ...row, settings: JSON.parse(row.settings) as ChatSettings };
}

@Injectable()
export class ChatsRepository {
  private readonly prepared = new PreparedStatements();
  /** PostgreSQL: `findOwnedWithContext`'s reads of one turn of the event loop, batched. */
  private readonly ownedReads: DataLoader<OwnedKey, OwnedWithContext | undefined> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly writes: GroupCommit,
  ) {
    this.ownedReads = isPostgres(db)
      ? new DataLoader((keys) => this.readOwnedWithContext(keys), {
          cache: false,
          maxBatchSize: OWNED_READ_BATCH,
          // The reads of one turn of the event loop (each frame is a callback of its own: the
          // default, after the current promise jobs, would batch one socket's frames only).
          batchScheduleFn: (run) => setImmediate(run),
        })
      : undefined;
  }

  async create(chat: NewChat): Promise<Chat> {
    const created = newChat(chat);
    await this.insert(created);
    return created;
  }

  /**
   * A chat made by `newChat`, with its first messages (made by `newMessage`) in the same transaction
   * (a new turn's, or an imported chat's: nothing is half-imported).
   */
  async insert(chat: Chat, messages: Message[] = []): Promise<void> {
    const chatQuery = this.prepared.bind('insert', toRow(chat), (row) => this.db.insertInto('chats').values(row));
    await this.writes.run([chatQuery, ...messages.map((message) => insertMessage(this.db, this.prepared, message))]);
  }

  /**
   * An imported chat with its messages, `batch` rows a transaction so that a big import never holds
   * the event loop for long (SQLite writes synchronously); `messages` may be made lazily, a batch at
   * a time. Until its last row is in, the chat belongs to nobody (IMPORTING), so no one sees it
   * half-written; a failed batch deletes it, and so does the next import once an hour has passed
   * (the server stopped part-way). Its activity (`updated_at`) is when the import ended.
   */
  async insertImported(chat: Chat, messages: Iterable<Message>, batch = IMPORT_BATCH_ROWS): Promise<void> {
    const abandoned = await this.db
      .selectFrom('chats')
      .select('id')
      .where('user_id', '=', IMPORTING)
      .where('updated_at', '<', new Date(Date.now() - ABANDONED_IMPORT_MS).toISOString())
      .execute();
    for (const { id } of abandoned) await this.delete(id);
    await this.insert({ ...chat, user_id: IMPORTING });
    try {
      let pending: CompiledQuery[] = [];
      for (const message of messages) {
        pending.push(insertMessage(this.db, this.prepared, message));
        if (pending.length < batch) continue;
        await this.writes.run(pending);
        pending = [];
      }
      if (pending.length) await this.writes.run(pending);
      await this.db.updateTable('chats').set({ user_id: chat.user_id, updated_at: nowIso() }).where('id', '=', chat.id).execute();
    } catch (error) {
      await this.delete(chat.id);
      throw error;
    }
  }

  async findById(id: string): Promise<Chat | undefined> {
    return toChat(await this.db.selectFrom('chats').select(CHAT_COLUMNS).where('id', '=', id).executeTakeFirst());
  }

  /** The chat when it exists and belongs to `userId`. */
  async findOwned(id: string, userId: string): Promise<Chat | undefined> {
    return toChat(await this.db.selectFrom('chats').select(CHAT_COLUMNS).where('id', '=', id).where('user_id', '=', userId).executeTakeFirst());
  }

  /**
   * The chat when it exists and belongs to `userId`, with its current messages as a model request
   * needs them (`MessagesRepository.listContext`), in one statement: a turn in an existing chat
   * waits one round trip before its model request, not two. The messages are joined only to the
   * chat the user owns: another user's chat gives nothing at all.
   *
   * On PostgreSQL the reads asked for in one turn of the event loop share that statement (up to
   * OWNED_READ_BATCH; DataLoader): each read alone was a pooled round trip, ~0.5 ms of the
   * instance's CPU, and 250 turns at once queued on a pool of 10. SQLite reads at once.
   */
  findOwnedWithContext(id: string, userId: string): Promise<OwnedWithContext | undefined> {
    if (this.ownedReads) return this.ownedReads.load({ id, userId });
    return this.readOwnedWithContext([{ id, userId }]).then(([found]) => found);
  }

  /**
   * `findOwnedWithContext` of several chats in one statement (a prepared shape per number of
   * chats). The chat's small columns come with every row; its settings with its first row alone (a
   * window function, SQLite and PostgreSQL alike), not once per message.
   */
  private async readOwnedWithContext(keys: readonly OwnedKey[]): Promise<Array<OwnedWithContext | undefined>> {
    const values: Record<string, string> = {};
    keys.forEach((key, i) => {
      values[`id${i}`] = key.id;
      values[`user${i}`] = key.userId;
    });
    const query = this.prepared.bind(`owned with context x${keys.length}`, values, (v) =>
      this.db
        .selectFrom('chats')
        .leftJoin('messages', (join) => join.onRef('messages.chat_id', '=', 'chats.id').on('messages.replaced_by', 'is', null))
        .select(JOINED_CHAT_COLUMNS)
        // The settings (a system prompt of up to 32,000 characters) on the first row only, not once per message.
        .select(sql<string | null>`case when row_number() over (partition by chats.id order by messages.created_at) = 1 then chats.settings end`.as('settings'))
        .select([
          'messages.id as m_id',
          'messages.role as m_role',
          'messages.content as m_content',
          'messages.status as m_status',
          'messages.attachments as m_attachments',
        ])
        .where(({ eb, refTuple, tuple }) =>
          eb(
            refTuple('chats.id', 'chats.user_id'),
            'in',
            keys.map((_, i) => tuple(v[`id${i}`], v[`user${i}`])),
          ),
        )
        .orderBy('chats.id')
        .orderBy('messages.created_at', 'asc'),
    );
    const { rows } = await this.db.executeQuery<Omit<ChatRow, 'settings'> & { settings: string | null } & ContextJoin>(query);
    const found = new Map<string, { chat: ChatRow; context: ContextMessage[] }>();
    for (const row of rows) {
      let entry = found.get(row.id);
      if (!entry) {
        const { id, user_id, title, created_at, updated_at } = row;
        entry = { chat: { id, user_id, title, settings: '{}', created_at, updated_at }, context: [] };
        found.set(row.id, entry);
      }
      // The row numbered 1 by the window, which ties in created_at may put elsewhere than first.
      if (row.settings !== null) entry.chat.settings = row.settings;
      // A chat without current messages: one row, the message's columns null.
      if (row.m_id === null) continue;
      entry.context.push(
        toContextMessage({ id: row.m_id, role: row.m_role!, content: row.m_content!, status: row.m_status!, attachments: row.m_attachments! }),
      );
    }
    // Each caller its own chat (the same chat asked for twice in a batch is parsed for each).
    return keys.map((key) => {
      const entry = found.get(key.id);
      return entry?.chat.user_id === key.userId ? { chat: toChat(entry.chat), context: entry.context } : undefined;
    });
  }

  /** A user's chats, newest activity first. */
  async list(userId: string, limit = 500): Promise<Chat[]> {
    const rows = await this.db.selectFrom('chats').select(CHAT_COLUMNS).where('user_id', '=', userId).orderBy('updated_at', 'desc').limit(limit).execute();
    return rows.map((row) => toChat(row));
  }

  async update(id: string, changes: { title?: string; settings?: ChatSettings }): Promise<Chat | undefined> {
    const values: Partial<ChatRow> = { updated_at: nowIso() };
    if (changes.title !== undefined) values.title = changes.title;
    if (changes.settings !== undefined) values.settings = JSON.stringify(changes.settings);
    await this.db.updateTable('chats').set(values).where('id', '=', id).execute();
    return this.findById(id);
  }

  /**
   * Replaces the title only while it is still `from` (the one it was given at creation): a rename
   * made meanwhile wins. The chat's time is not moved. True when replaced.
   */
  async retitle(id: string, from: string, to: string): Promise<boolean> {
    const result = await this.db.updateTable('chats').set({ title: to }).where('id', '=', id).where('title', '=', from).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async touch(id: string): Promise<void> {
    const touch = this.prepared.bind('touch', { id, updated_at: nowIso() }, (v) =>
      this.db.updateTable('chats').set({ updated_at: v.updated_at }).where('id', '=', v.id),
    );
    await this.writes.run([touch]);
  }

  async delete(id: string): Promise<boolean> {
    await this.db.deleteFrom('messages').where('chat_id', '=', id).execute();
    await this.db.deleteFrom('shares').where('chat_id', '=', id).execute();
    const result = await this.db.deleteFrom('chats').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
