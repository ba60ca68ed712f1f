import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** The real server as a child process, as `npm start` runs it. */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** `script` defaults to the built server; any script that prints `listening on http://…` will do. */
  static async start(env: Record<string, string>, script = join(ROOT, 'dist', 'main.js'), cwd?: string): Promise<ServerProcess> {
    const child = spawn(process.execPath, [script], {
      cwd: cwd ?? mkdtempSync(join(tmpdir(), 'chat-proc-')),
      env: { PATH: process.env.PATH ?? '', PORT: '0', GENERATED_TITLES: 'false', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 15000);
      const onData = (data: Buffer) => {
        output += data;
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
    });
    return new ServerProcess(child, url);
  }

  get wsUrl(): string {
    return `${this.url.replace('http', 'ws')}/ws`;
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    return new Promise((resolve) => {
      this.child.once('exit', (code) => resolve(code));
      this.child.kill(signal);
    });
  }
}
