import { type Kysely, PostgresAdapter } from 'kysely';

/** True when this database speaks PostgreSQL (migrations and search differ there). */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
