import { Logger } from '@nestjs/common';
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';

/**
 * The worker's code (plain JS, so it runs the same from `dist/` and under ts-jest): its own
 * connection to the database file, a PASSIVE checkpoint every `intervalMs`, a last one on `close`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  // The app's connection is closed: this one is the last, and closing it checkpoints the rest.
  try {
    db.close();
  } catch {}
  parentPort.close();
});
`;

/**
 * Moves SQLite's WAL checkpoints off the event loop. By default the connection that commits past
 * 1,000 WAL pages copies them into the database file itself, inside that commit: with the FTS
 * tables a turn's writes fill the WAL quickly, and those copies were ~40% of the time the server
 * spent in SQLite (bench/findings.md). Here the app's connection never checkpoints
 * (`wal_autocheckpoint = 0`); a worker thread with a connection of its own does, every
 * `intervalMs`, PASSIVE (it never blocks a writer). `journal_size_limit` keeps the WAL file from
 * staying at its largest size once it has been reset.
 */
export function startCheckpointer(sqlite: SqliteDatabase.Database, path: string, intervalMs: number): void {
  const log = new Logger('Database');
  sqlite.pragma('wal_autocheckpoint = 0');
  sqlite.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { driver: require.resolve('better-sqlite3'), path, intervalMs },
  });
  worker.unref();
  worker.on('message', (message: { error?: string }) => {
    if (message.error) log.warn(`WAL checkpoint failed: ${message.error}`);
  });
  worker.on('error', (error) => {
    // Without the worker nothing checkpoints: hand the job back to SQLite's own automatic one.
    log.error(`WAL checkpointer stopped (${error.message}); checkpoints go back to the commits`);
    if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
  });
  const close = sqlite.close.bind(sqlite);
  // Kysely's destroy() closes the connection; the worker's, closed after it, is the last one.
  sqlite.close = (() => {
    close();
    worker.postMessage('close');
    return sqlite;
  }) as typeof sqlite.close;
}
