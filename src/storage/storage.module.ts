import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Kysely, sql } from 'kysely';
import { ChatsRepository } from './chats.repository';
import { databaseProvider } from './database.provider';
import { MessagesRepository } from './messages.repository';
import { Database } from './schema';
import { SolverRunsRepository } from './solver-runs.repository';
import { UsersRepository } from './users.repository';
import { FilesRepository } from './files.repository';
import { UsageRepository } from './usage.repository';

@Global()
@Module({
  providers: [databaseProvider, ChatsRepository, MessagesRepository, UsersRepository, SolverRunsRepository, FilesRepository, UsageRepository],
  exports: [Kysely, ChatsRepository, MessagesRepository, UsersRepository, SolverRunsRepository, FilesRepository, UsageRepository],
})
export class StorageModule implements OnApplicationShutdown {
  constructor(@Inject(Kysely) private readonly db: Kysely<Database>) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.destroy();
  }
}

/** True when the database answers a trivial query. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
