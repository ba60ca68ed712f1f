import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** Longest one file may take in the worker before the worker is terminated and the file left out. */
export const DECLARATION_BUDGET_MS = 2_000;
/** Longest the worker may take to start (loading its code). */
const START_BUDGET_MS = 30_000;

interface Reply {
  id?: number;
  ready?: boolean;
  declarations?: string[];
  error?: string;
}

/**
 * Reads declarations of repository files in a worker thread, one file at a time, so nothing a
 * hostile repository holds runs on the event loop. A file that takes longer than its budget gets
 * the worker terminated (a fresh one starts for the next file) and reads as `undefined`.
 */
@Injectable()
export class DeclarationReader implements OnModuleDestroy {
  private readonly logger = new Logger(DeclarationReader.name);
  private worker?: Promise<Worker>;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;
  /** Per file; tests lower it. */
  budgetMs = DECLARATION_BUDGET_MS;

  /** The file's declarations; undefined when the worker gave up on it (over budget or failed). */
  read(path: string, text: string): Promise<string[] | undefined> {
    const next = this.queue.then(() => this.readOne(path, text));
    this.queue = next.catch(() => undefined);
    return next;
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  private async readOne(path: string, text: string): Promise<string[] | undefined> {
    let worker: Worker;
    try {
      worker = await (this.worker ??= this.start());
    } catch (error) {
      this.worker = undefined;
      this.logger.error(`the repository map's worker did not start: ${String((error as Error)?.message ?? error)}`);
      return undefined;
    }
    const id = ++this.nextId;
    return new Promise<string[] | undefined>((resolve) => {
      const finish = (result: string[] | undefined) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve(result);
      };
      const onMessage = (reply: Reply) => {
        if (reply.id !== id) return;
        if (reply.error) this.logger.warn(`declarations of ${path} failed: ${reply.error}`);
        finish(reply.declarations);
      };
      const onExit = () => {
        this.worker = undefined;
        finish(undefined);
      };
      const timer = setTimeout(() => {
        this.logger.warn(`declarations of ${path} (${text.length} characters) took over ${this.budgetMs} ms; worker restarted`);
        void this.stop();
        finish(undefined);
      }, this.budgetMs);
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      worker.postMessage({ id, path, text });
    });
  }

  private start(): Promise<Worker> {
    // From dist/ the worker is plain JS; under ts-jest / ts-node its source is TypeScript.
    const entry = join(__dirname, `declarations.worker${extname(__filename)}`);
    const worker = entry.endsWith('.ts')
      ? new Worker(`require('ts-node').register({ transpileOnly: true }); require(${JSON.stringify(entry)});`, { eval: true, resourceLimits: LIMITS })
      : new Worker(entry, { resourceLimits: LIMITS });
    worker.unref();
    worker.on('error', (error) => this.logger.warn(`the repository map's worker failed: ${error.message}`));
    return new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`no answer within ${START_BUDGET_MS} ms`));
      }, START_BUDGET_MS);
      const settle = (ok: boolean, error?: Error) => {
        clearTimeout(timer);
        worker.off('message', onReady);
        worker.off('exit', onExit);
        if (ok) resolve(worker);
        else reject(error ?? new Error('the worker exited'));
      };
      const onReady = (reply: Reply) => reply.ready && settle(true);
      const onExit = (code: number) => settle(false, new Error(`the worker exited with code ${code}`));
      worker.on('message', onReady);
      worker.on('exit', onExit);
    });
  }

  private async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.then((w) => w.terminate()).catch(() => undefined);
  }
}

/** A file's parse may not take the whole process's memory with it. */
const LIMITS = { maxOldGenerationSizeMb: 256, stackSizeMb: 8 };
