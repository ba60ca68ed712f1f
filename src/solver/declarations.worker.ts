/**
 * The repository map's worker thread: declarations of one file per message, off the event loop.
 * DeclarationReader starts it, times each file and terminates it when one takes too long.
 */
import { parentPort } from 'node:worker_threads';
import { extractDeclarations } from './declarations';

interface Job {
  id: number;
  path: string;
  text: string;
}

const port = parentPort;
if (port) {
  port.on('message', ({ id, path, text }: Job) => {
    try {
      port.postMessage({ id, declarations: extractDeclarations(path, text) });
    } catch (error) {
      port.postMessage({ id, error: String((error as Error)?.message ?? error) });
    }
  });
  port.postMessage({ ready: true });
}
