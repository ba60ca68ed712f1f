/**
 * The repository map's worker thread: declarations of one file per message, off the event loop —
 * from its syntax tree (tree-sitter) when there is a grammar, else (or when the parse gives up) by
 * line patterns. DeclarationReader starts it, times each file and terminates it when one takes too long.
 */
import { parentPort } from 'node:worker_threads';
import { extractDeclarations } from './declarations';
import { initTreeSitter, treeSitterDeclarations } from './tree-sitter-declarations';

interface Job {
  id: number;
  path: string;
  text: string;
}

/** Larger files, or files with a line longer than this (minified, generated, hostile), get the patterns only. */
const MAX_PARSED_CHARS = 256 * 1024;
const MAX_PARSED_LINE = 5_000;

/** Whether the syntax tree is worth its parse: a plain scan, no pattern. */
function parseable(text: string): boolean {
  if (text.length > MAX_PARSED_CHARS) return false;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n', start);
    if ((end < 0 ? text.length : end) - start > MAX_PARSED_LINE) return false;
    if (end < 0) return true;
    start = end + 1;
  }
}

const port = parentPort;
if (port) {
  port.on('message', ({ id, path, text }: Job) => {
    void (parseable(text) ? treeSitterDeclarations(path, text) : Promise.resolve(undefined))
      .then((declarations) => port.postMessage({ id, declarations: declarations ?? extractDeclarations(path, text) }))
      .catch((error: unknown) => port.postMessage({ id, error: String((error as Error)?.message ?? error) }));
  });
  void initTreeSitter().then(
    () => port.postMessage({ ready: true }),
    // Without tree-sitter the patterns still work.
    () => port.postMessage({ ready: true }),
  );
}
