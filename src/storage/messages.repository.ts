import { Injectable } from '@nestjs/common';
import { CompiledQuery, Kysely, Selectable, sql } from 'kysely';
import { nowIso } from '../common/clock';
import type { MessageStatus } from '../common/message-status';
import { isPostgres } from './dialect';
import { GroupCommit } from './group-commit';
import { idsColumn, objectColumn, readIds, readObject } from './json-columns';
import { PreparedStatements } from './prepared';
import { Database, MessagesTable } from './schema';

/** A message as stored: its JSON columns are text. Only repositories see it. */
export type MessageRow = Selectable<MessagesTable>;

/** The model's usage figures of an answer, as it reported them. */
export type Usage = Record<string, unknown>;

/** A message: the stored row with its JSON columns parsed. */
export interface Message extends Omit<MessageRow, 'usage' | 'previous_versions' | 'attachments'> {
  usage: Usage | null;
  /**
   * The earlier versions of this place in the chat, oldest first (empty for none): the answers a
   * regenerated answer replaced, or the user messages an edited one replaced (each heading its branch).
   */
  previous_versions: string[];
  /** Ids of the files sent with a user message (empty for none). */
  attachments: string[];
}

/** Exactly the schema's columns: PostgreSQL adds a generated search column (`content_tsv`) that rows must not carry. */
const MESSAGE_COLUMNS = [
  'id',
  'chat_id',
  'role',
  'content',
  'reasoning',
  'status',
  'model',
  'usage',
  'error_code',
  'finish_reason',
  'request_id',
  'seq',
  'created_at',
  'updated_at',
  'replaced_by',
  'previous_versions',
  'attachments',
  'instance_id',
  'omitted_turns',
] as const satisfies readonly (keyof MessagesTable)[];
const QUALIFIED_MESSAGE_COLUMNS = MESSAGE_COLUMNS.map((column) => `messages.${column}` as const);

export interface SearchHit {
  chat_id: string;
  message_id: string | null;
  title: string;
  snippet: string;
  rank: number;
}

/** The user's words (letters, digits, _), at most 16: each becomes a required prefix term. */
export function searchWords(text: string): string[] {
  return (text.match(/[\p{L}\p{N}_]+/gu) ?? []).slice(0, 16).map((word) => word.toLowerCase());
}

/** What building a model request reads of a message (`listContext`). */
const CONTEXT_COLUMNS = ['id', 'role', 'content', 'status', 'attachments'] as const satisfies readonly (keyof MessagesTable)[];
export type ContextMessage = Pick<Message, (typeof CONTEXT_COLUMNS)[number]>;

export interface NewMessage {
  id: string;
  chat_id: string;
  role: 'user' | 'assistant';
  content: string;
  status: MessageStatus;
  model?: string | null;
  request_id?: string | null;
  attachments?: string[];
  previous_versions?: string[];
  /** The instance that will generate it (with Redis), set at insert so no sweep sees it unowned. */
  instance_id?: string | null;
  /** Older turns the answer's model request left out. */
  omitted_turns?: number | null;
}

export interface MessageSnapshot {
  id: string;
  content: string;
  reasoning: string | null;
  seq: number;
}

export interface FinalMessage {
  content: string;
  reasoning: string | null;
  status: MessageStatus;
  seq: number;
  usage?: Usage | null;
  error_code?: string | null;
  /** The model's own finish_reason, when it gave one. */
  finish_reason?: string | null;
}

@Injectable()
export class MessagesRepository {
  private readonly prepared = new PreparedStatements();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly writes: GroupCommit,
  ) {}

  async insert(message: NewMessage): Promise<Message> {
    const created = newMessage(message);
    await this.insertMany([created]);
    return created;
  }

  /** Messages made by `newMessage`, in one transaction. */
  async insertMany(messages: Message[]): Promise<void> {
    if (messages.length) await this.writes.run(messages.map((message) => insertMessage(this.db, this.prepared, message)));
  }

  async findById(id: string): Promise<Message | undefined> {
    return toMessage(await this.db.selectFrom('messages').select(MESSAGE_COLUMNS).where('id', '=', id).executeTakeFirst());
  }

  /** The message when it exists and its chat belongs to `userId`. */
  async findOwned(id: string, userId: string): Promise<Message | undefined> {
    const row = await this.db
      .selectFrom('messages')
      .innerJoin('chats', 'chats.id', 'messages.chat_id')
      .select(QUALIFIED_MESSAGE_COLUMNS)
      .where('messages.id', '=', id)
      .where('chats.user_id', '=', userId)
      .executeTakeFirst();
    return toMessage(row);
  }

  /** The chat's current messages, oldest first (answers replaced by a regenerated one left out). */
  async listByChat(chatId: string): Promise<Message[]> {
    return (await this.mainLine(chatId).select(MESSAGE_COLUMNS).execute()).map((row) => toMessage(row));
  }

  /**
   * The chat's current messages as a model request needs them (`listByChat` without the reasoning,
   * usage and bookkeeping columns): read on every turn of a chat before its request goes out, and a
   * thinking model's reasoning is often most of a long chat's bytes. 200 messages with 5.6 KB of
   * reasoning per answer: 3.7 → 1.7 ms.
   */
  async listContext(chatId: string): Promise<ContextMessage[]> {
    const rows = await this.mainLine(chatId).select(CONTEXT_COLUMNS).execute();
    return rows.map((row) => toContextMessage(row));
  }

  /** A chat's current messages (no replaced answer), oldest first; the caller picks the columns. */
  private mainLine(chatId: string) {
    return this.db.selectFrom('messages').where('chat_id', '=', chatId).where('replaced_by', 'is', null).orderBy('created_at', 'asc');
  }

  /** Every message of the chat, replaced versions included (export). */
  async listAllByChat(chatId: string): Promise<Message[]> {
    const rows = await this.db.selectFrom('messages').select(MESSAGE_COLUMNS).where('chat_id', '=', chatId).orderBy('created_at', 'asc').execute();
    return rows.map((row) => toMessage(row));
  }

  /** The chat's messages that are not on its current line (replaced answers, edited branches), oldest first. */
  async listReplaced(chatId: string): Promise<Message[]> {
    const rows = await this.db
      .selectFrom('messages')
      .select(MESSAGE_COLUMNS)
      .where('chat_id', '=', chatId)
      .where('replaced_by', 'is not', null)
      .orderBy('created_at', 'asc')
      .execute();
    return rows.map((row) => toMessage(row));
  }

  /**
   * The messages that followed an edited user message in its version of the chat, oldest first: an
   * edit marks the edited message and every message then after it on the current line as replaced
   * by the new user message (answers a regenerate replaced before stay replaced by their answer).
   * Empty for a message that is not an edited user message.
   */
  async listBranchAfter(edited: Message): Promise<Message[]> {
    if (edited.role !== 'user' || !edited.replaced_by) return [];
    const rows = await this.db
      .selectFrom('messages')
      .select(MESSAGE_COLUMNS)
      .where('chat_id', '=', edited.chat_id)
      .where('replaced_by', '=', edited.replaced_by)
      .where('created_at', '>', edited.created_at)
      .orderBy('created_at', 'asc')
      .execute();
    return rows.map((row) => toMessage(row));
  }

  /** Marks `oldIds` as replaced by `newId` (a regenerated answer, or an edit's new user message for its branch). */
  async markReplaced(oldIds: string[], newId: string): Promise<void> {
    if (!oldIds.length) return;
    await this.writes.run([this.db.updateTable('messages').set({ replaced_by: newId }).where('id', 'in', oldIds).compile()]);
  }

  /**
   * SQLite: indexes what the search triggers queued (messages that became final, new or renamed
   * chats), at most `batch` of each, in one transaction. Answers whether more are waiting.
   * PostgreSQL keeps its index in the row itself: nothing to do.
   */
  async flushSearchIndex(batch = 500): Promise<boolean> {
    if (isPostgres(this.db)) return false;
    const { rows } = await sql<{ messages: number | null; chats: number | null }>`
      SELECT (SELECT id FROM messages_fts_pending LIMIT 1) AS messages, (SELECT id FROM chats_fts_pending LIMIT 1) AS chats`.execute(this.db);
    if (rows[0].messages === null && rows[0].chats === null) return false;
    return this.db.transaction().execute(async (trx) => {
      let more = false;
      for (const queue of SEARCH_QUEUES) more = (await indexQueue(trx, queue, batch)) || more;
      return more;
    });
  }

  /**
   * SQLite: index rows are keyed by their row's rowid (migration 0006), and a restore from `.dump`
   * (or a VACUUM, which SQLite allows to) renumbers the rowids of a table without an INTEGER
   * PRIMARY KEY (messages and chats are keyed by uuid): the index would then point at other rows,
   * and a delete or an edit would miss its entry. Checks the newest `sample` index rows of each
   * index against their rows (a renumbering after any delete moves them); when one no longer
   * matches, that index is built again from its table. Run at start-up. Answers which were rebuilt.
   */
  async repairSearchIndex(sample = 1000): Promise<string[]> {
    if (isPostgres(this.db)) return [];
    const rebuilt: string[] = [];
    for (const queue of SEARCH_QUEUES) {
      const [fts, table, key] = [sql.raw(queue.fts), sql.raw(queue.table), sql.raw(queue.key)];
      const { rows } = await sql<{ stale: number }>`
        SELECT count(*) AS stale FROM (SELECT rowid, ${key} AS id FROM ${fts} ORDER BY rowid DESC LIMIT ${sample}) f
        LEFT JOIN ${table} t ON t.rowid = f.rowid WHERE t.id IS NOT f.id`.execute(this.db);
      if (!rows[0].stale) continue;
      await this.db.transaction().execute(async (trx) => {
        await sql`DELETE FROM ${fts}`.execute(trx);
        await sql`DELETE FROM ${sql.raw(queue.pending)}`.execute(trx);
        await sql`INSERT INTO ${sql.raw(queue.pending)} (id) SELECT rowid FROM ${table} WHERE ${sql.raw(queue.indexable)}`.execute(trx);
      });
      rebuilt.push(queue.fts);
    }
    while (rebuilt.length && (await this.flushSearchIndex(5000)));
    return rebuilt;
  }

  /** Full-text search over a user's messages and chat titles, best first (FTS5 or PostgreSQL). */
  async search(userId: string, query: string, limit = 50): Promise<SearchHit[]> {
    const words = searchWords(query);
    if (!words.length) return [];
    if (isPostgres(this.db)) return this.searchPostgres(userId, words, limit);
    // What was queued since the last pass is searchable at once.
    while (await this.flushSearchIndex());
    return this.searchSqlite(userId, words, limit);
  }

  private async searchSqlite(userId: string, words: string[], limit: number): Promise<SearchHit[]> {
    const match = words.map((word) => `"${word}"*`).join(' ');
    const messages = await sql<SearchHit>`
      SELECT f.chat_id AS chat_id, f.message_id AS message_id, c.title AS title,
             snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet, bm25(messages_fts) AS rank
      FROM messages_fts f JOIN chats c ON c.id = f.chat_id JOIN messages m ON m.id = f.message_id
      WHERE messages_fts MATCH ${match} AND c.user_id = ${userId} AND m.replaced_by IS NULL
      ORDER BY rank LIMIT ${limit}`.execute(this.db);
    const titles = await sql<SearchHit>`
      SELECT f.chat_id AS chat_id, NULL AS message_id, c.title AS title,
             snippet(chats_fts, 0, '[', ']', '…', 12) AS snippet, bm25(chats_fts) - 10 AS rank
      FROM chats_fts f JOIN chats c ON c.id = f.chat_id
      WHERE chats_fts MATCH ${match} AND c.user_id = ${userId}
      ORDER BY rank LIMIT ${limit}`.execute(this.db);
    return [...titles.rows, ...messages.rows].sort((a, b) => a.rank - b.rank).slice(0, limit);
  }

  private async searchPostgres(userId: string, words: string[], limit: number): Promise<SearchHit[]> {
    const tsquery = words.map((word) => `${word}:*`).join(' & ');
    const headline = 'StartSel=[, StopSel=], MaxWords=24, MinWords=6, MaxFragments=1, FragmentDelimiter=…';
    const messages = await sql<SearchHit>`
      SELECT m.chat_id AS chat_id, m.id AS message_id, c.title AS title,
             ts_headline('simple', m.content, q, ${headline}) AS snippet, -ts_rank(m.content_tsv, q) AS rank
      FROM messages m JOIN chats c ON c.id = m.chat_id, to_tsquery('simple', ${tsquery}) q
      WHERE m.content_tsv @@ q AND c.user_id = ${userId} AND m.replaced_by IS NULL
      ORDER BY rank LIMIT ${limit}`.execute(this.db);
    const titles = await sql<SearchHit>`
      SELECT c.id AS chat_id, NULL AS message_id, c.title AS title,
             ts_headline('simple', c.title, q, ${headline}) AS snippet, -ts_rank(c.title_tsv, q) - 10 AS rank
      FROM chats c, to_tsquery('simple', ${tsquery}) q
      WHERE c.title_tsv @@ q AND c.user_id = ${userId}
      ORDER BY rank LIMIT ${limit}`.execute(this.db);
    return [...titles.rows, ...messages.rows].sort((a, b) => Number(a.rank) - Number(b.rank)).slice(0, limit);
  }

  /**
   * The text so far of several streaming messages (called about once a second, never per piece), in
   * one transaction (one commit for all: a commit, not the update, is most of a snapshot's cost).
   * Messages no longer streaming are left alone.
   */
  async snapshotMany(snapshots: MessageSnapshot[]): Promise<void> {
    if (!snapshots.length) return;
    const updatedAt = nowIso();
    await this.writes.run(
      snapshots.map(({ id, content, reasoning, seq }) =>
        this.prepared.bind('snapshot', { id, content, reasoning, seq, updated_at: updatedAt }, (v) =>
          this.db
            .updateTable('messages')
            .set({ content: v.content, reasoning: v.reasoning, seq: v.seq, updated_at: v.updated_at })
            .where('id', '=', v.id)
            .where('status', '=', 'streaming'),
        ),
      ),
    );
  }

  async finish(id: string, final: FinalMessage): Promise<void> {
    const values = {
      id,
      content: final.content,
      reasoning: final.reasoning,
      status: final.status,
      seq: final.seq,
      usage: objectColumn(final.usage),
      error_code: final.error_code ?? null,
      finish_reason: final.finish_reason ?? null,
      updated_at: nowIso(),
    };
    const finish = this.prepared.bind('finish', values, ({ id: messageId, ...set }) => this.db.updateTable('messages').set(set).where('id', '=', messageId));
    await this.writes.run([finish]);
  }

  /** Answers streaming on other instances (or on none recorded), for the dead-instance sweep. */
  async listStreamingElsewhere(instanceId: string): Promise<Message[]> {
    const rows = await this.db
      .selectFrom('messages')
      .select(MESSAGE_COLUMNS)
      .where('status', '=', 'streaming')
      .where((eb) => eb.or([eb('instance_id', 'is', null), eb('instance_id', '!=', instanceId)]))
      .execute();
    return rows.map((row) => toMessage(row));
  }

  /** Ends one answer as `interrupted` if it is still streaming (with fresher text, when known). */
  async interruptIfStreaming(id: string, text?: { content: string; reasoning: string | null; seq: number }): Promise<boolean> {
    const result = await this.db
      .updateTable('messages')
      .set({ status: 'interrupted', updated_at: nowIso(), ...(text ?? {}) })
      .where('id', '=', id)
      .where('status', '=', 'streaming')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** After a crash: whatever was left `streaming` ended part-way. Returns how many. */
  async interruptAllStreaming(): Promise<number> {
    const result = await this.db
      .updateTable('messages')
      .set({ status: 'interrupted', updated_at: nowIso() })
      .where('status', '=', 'streaming')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}

/** The insert of one message made by `newMessage` (compiled once: every such row has the same columns). */
export function insertMessage(db: Kysely<Database>, prepared: PreparedStatements, message: Message): CompiledQuery {
  return prepared.bind('insert message', toRow(message), (values) => db.insertInto('messages').values(values));
}

/** A context row as a turn's model request reads it (its attachments parsed). */
export function toContextMessage(row: Pick<MessageRow, (typeof CONTEXT_COLUMNS)[number]>): ContextMessage {
  return { id: row.id, role: row.role, content: row.content, status: row.status, attachments: readIds(row.attachments) };
}

/** The message as stored. */
function toRow(message: Message): MessageRow {
  return {
    ...message,
    usage: objectColumn(message.usage),
    previous_versions: idsColumn(message.previous_versions),
    attachments: idsColumn(message.attachments),
  };
}

/** The stored row as a message (its JSON columns parsed). */
function toMessage(row: MessageRow): Message;
function toMessage(row: MessageRow | undefined): Message | undefined;
function toMessage(row: MessageRow | undefined): Message | undefined {
  if (!row) return undefined;
  return { ...row, usage: readObject<Usage>(row.usage), previous_versions: readIds(row.previous_versions), attachments: readIds(row.attachments) };
}

/** A new message (timestamped now: messages made one after another sort in that order). */
export function newMessage(message: NewMessage): Message {
  const now = nowIso();
  return {
    id: message.id,
    chat_id: message.chat_id,
    role: message.role,
    content: message.content,
    reasoning: null,
    status: message.status,
    model: message.model ?? null,
    usage: null,
    error_code: null,
    finish_reason: null,
    request_id: message.request_id ?? null,
    seq: 0,
    created_at: now,
    updated_at: now,
    replaced_by: null,
    previous_versions: message.previous_versions ?? [],
    attachments: message.attachments ?? [],
    instance_id: message.instance_id ?? null,
    omitted_turns: message.omitted_turns ?? null,
  };
}

/** A search queue (migrations 0007, 0009): rowids waiting in `pending` to be (re)indexed in `fts`. */
interface SearchQueue {
  pending: string;
  fts: string;
  /** The indexed table, the index column holding its row's id, and the rows worth indexing. */
  table: string;
  key: string;
  indexable: string;
  /** The index row of each queued rowid `p.id`, as `SELECT rowid, …columns of fts`. */
  rows: string;
  columns: string;
}

const SEARCH_QUEUES: SearchQueue[] = [
  {
    pending: 'messages_fts_pending',
    fts: 'messages_fts',
    table: 'messages',
    key: 'message_id',
    indexable: "status != 'streaming'",
    columns: 'rowid, content, message_id, chat_id',
    rows: 'SELECT m.rowid, m.content, m.id, m.chat_id FROM messages_fts_pending p JOIN messages m ON m.rowid = p.id',
  },
  {
    pending: 'chats_fts_pending',
    fts: 'chats_fts',
    table: 'chats',
    key: 'chat_id',
    indexable: '1',
    columns: 'rowid, title, chat_id',
    rows: 'SELECT c.rowid, c.title, c.id FROM chats_fts_pending p JOIN chats c ON c.rowid = p.id',
  },
];

/** Indexes up to `batch` queued rowids of one queue; true when more are waiting. */
async function indexQueue(trx: Kysely<Database>, queue: SearchQueue, batch: number): Promise<boolean> {
  const pending = sql.raw(queue.pending);
  const { rows } = await sql<{ id: number }>`SELECT id FROM ${pending} ORDER BY id LIMIT ${batch + 1}`.execute(trx);
  if (!rows.length) return false;
  const last = rows[Math.min(batch, rows.length) - 1].id;
  await sql`DELETE FROM ${sql.raw(queue.fts)} WHERE rowid IN (SELECT id FROM ${pending} WHERE id <= ${last})`.execute(trx);
  await sql`INSERT INTO ${sql.raw(queue.fts)} (${sql.raw(queue.columns)}) ${sql.raw(queue.rows)} WHERE p.id <= ${last}`.execute(trx);
  await sql`DELETE FROM ${pending} WHERE id <= ${last}`.execute(trx);
  return rows.length > batch;
}
