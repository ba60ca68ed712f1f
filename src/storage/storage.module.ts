import { Global, Inject, Logger, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Kysely, sql } from 'kysely';
import { ChatsRepository } from './chats.repository';
import { databaseProvider } from './database.provider';
import { isPostgres } from './dialect';
import { GroupCommit } from './group-commit';
import { MessagesRepository } from './messages.repository';
import { Database } from './schema';
import { SolverRunsRepository } from './solver-runs.repository';
import { UsersRepository } from './users.repository';
import { FilesRepository } from './files.repository';
import { UsageRepository } from './usage.repository';
import { SharesRepository } from './shares.repository';
import { TurnStore } from './turn-store';

@Global()
@Module({
  providers: [
    databaseProvider,
    GroupCommit,
    ChatsRepository,
    MessagesRepository,
    UsersRepository,
    SolverRunsRepository,
    FilesRepository,
    UsageRepository,
    SharesRepository,
    TurnStore,
  ],
  exports: [Kysely, ChatsRepository, MessagesRepository, UsersRepository, SolverRunsRepository, FilesRepository, UsageRepository, SharesRepository, TurnStore],
})
export class StorageModule implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Database');
  private indexTimer?: NodeJS.Timeout;
  private indexing?: Promise<unknown>;

  constructor(
    @Inject(Kysely) private readonly db: Kysely<Database>,
    private readonly messages: MessagesRepository,
    private readonly writes: GroupCommit,
  ) {}

  /**
   * SQLite: the search index is checked against its tables (a restore from a dump may have renumbered their rows)
   * and what the search triggers queue (messages, chat titles) is indexed in batches (migrations 0007, 0009).
   */
  async onModuleInit(): Promise<void> {
    if (isPostgres(this.db)) return;
    const rebuilt = await this.messages.repairSearchIndex();
    if (rebuilt.length)
      this.logger.warn(`search index rebuilt (${rebuilt.join(', ')}): its rows no longer matched their tables' rows, as after a restore from a dump`);
    this.indexTimer = setInterval(() => {
      this.indexing ??= this.messages
        .flushSearchIndex()
        .catch((error: Error) => this.logger.warn(`search index: ${error.message}`))
        .finally(() => (this.indexing = undefined));
    }, SEARCH_INDEX_INTERVAL_MS);
    this.indexTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.indexTimer);
    await this.writes.drain();
    await this.indexing;
    if (!isPostgres(this.db)) {
      // What is still queued would be indexed at the next start anyway; this keeps search complete.
      while (await this.messages.flushSearchIndex().catch(() => false));
    }
    await this.db.destroy();
  }
}

/** How often queued messages reach the SQLite search index (a search indexes the queue first). */
export const SEARCH_INDEX_INTERVAL_MS = 250;

/** True when the database answers a trivial query. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
