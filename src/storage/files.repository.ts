import { Injectable } from '@nestjs/common';
import { Kysely, Selectable } from 'kysely';
import { nowIso } from '../common/clock';
import { Database, FilesTable } from './schema';

export type FileRow = Selectable<FilesTable>;

/** Uploaded text files. */
@Injectable()
export class FilesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertFile(file: Omit<FileRow, 'created_at'>): Promise<FileRow> {
    const row = { ...file, created_at: nowIso() };
    await this.db.insertInto('files').values(row).execute();
    return row;
  }

  /** The files with these ids that belong to `userId`. */
  findFiles(ids: string[], userId: string): Promise<FileRow[]> {
    if (!ids.length) return Promise.resolve([]);
    return this.db.selectFrom('files').selectAll().where('id', 'in', ids).where('user_id', '=', userId).execute();
  }

  /** The sizes of the files with these ids that belong to `userId` (their text is not read). */
  sizesOf(ids: string[], userId: string): Promise<Pick<FileRow, 'id' | 'size'>[]> {
    if (!ids.length) return Promise.resolve([]);
    return this.db.selectFrom('files').select(['id', 'size']).where('id', 'in', ids).where('user_id', '=', userId).execute();
  }

  /** Bytes of the files `userId` keeps (what the upload quota counts). */
  async bytesOf(userId: string): Promise<number> {
    const row = await this.db
      .selectFrom('files')
      .select((eb) => eb.fn.sum<number | string | null>('size').as('bytes'))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    // PostgreSQL sums integers as numeric (a string); SQLite as a number; no rows: null.
    return Number(row?.bytes ?? 0);
  }
}
