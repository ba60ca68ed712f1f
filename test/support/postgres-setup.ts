import { Pool } from 'pg';
import { TEST_POSTGRES_URL, TEST_SCHEMA_PREFIX } from './databases';

/** Drops the schemas earlier runs left behind, so the test database does not grow. */
export default async function setup(): Promise<void> {
  const pool = new Pool({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  try {
    const { rows } = await pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${TEST_SCHEMA_PREFIX}%`]);
    for (const { nspname } of rows) await pool.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  } catch (error) {
    throw new Error(`the postgres test project needs PostgreSQL at ${TEST_POSTGRES_URL}: ${(error as Error).message}`);
  } finally {
    await pool.end();
  }
}
