import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const PACKAGE = 'nest-chat-system';
/** What the packed library is made of: a change to any of these makes a new tarball. */
const INPUTS = ['src', 'views', 'public', 'package.json', 'README.md', 'tsconfig.build.json'];
const CACHE = join(tmpdir(), 'nest-chat-packed');
/** Cached tarballs older than this (other contents of src/) are removed when a new one is made. */
const STALE_MS = 6 * 60 * 60 * 1000;

/** Runs a command; its whole output in the error when it fails (tsc writes its errors to stdout). */
export function run(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

function filesOf(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => filesOf(join(path, entry)));
}

/** A hash of every input file's path and bytes. */
function contentKey(): string {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap((input) => filesOf(join(ROOT, input)))) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 20);
}

let memo: string | undefined;

/**
 * The library as `npm pack` makes it: built with tsc -p tsconfig.build.json into a temp folder (the
 * project's own dist/ is left alone) and packed. Built once for a given content of src/, views/,
 * public/ and package.json and kept in a temp cache, so every spec file of a Jest run (each in its
 * own module registry, maybe its own worker) shares one build. Concurrent builders race harmlessly:
 * each builds in a private folder and the first rename into the cache wins.
 * Returns the path of the .tgz.
 */
export function packedLibrary(): string {
  if (memo && existsSync(memo)) return memo;
  const key = contentKey();
  const done = join(CACHE, key);
  const tarball = join(done, `${PACKAGE}.tgz`);
  if (existsSync(tarball)) return (memo = tarball);

  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, `building-${key}-`));
  try {
    const lib = join(work, 'lib');
    mkdirSync(lib);
    for (const entry of ['package.json', 'README.md', 'views', 'public']) cpSync(join(ROOT, entry), join(lib, entry), { recursive: true });
    run(
      process.execPath,
      [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(lib, 'dist'), '--tsBuildInfoFile', join(work, 'lib.tsbuildinfo')],
      ROOT,
    );
    const out = join(work, 'out');
    mkdirSync(out);
    const packed = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], lib);
    renameSync(join(out, (JSON.parse(packed) as Array<{ filename: string }>)[0].filename), join(out, `${PACKAGE}.tgz`));
    try {
      renameSync(out, done);
    } catch (error) {
      // Another spec file finished the same build first: use theirs.
      if (!existsSync(tarball)) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  removeStale(key);
  return (memo = tarball);
}

function removeStale(keep: string): void {
  const now = Date.now();
  for (const entry of readdirSync(CACHE)) {
    if (entry === keep) continue;
    const path = join(CACHE, entry);
    try {
      if (now - statSync(path).mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed meanwhile by another run.
    }
  }
}

/**
 * Makes `hostDir/node_modules` the way a host that ran `npm install <tarball>` has it: the packed
 * library unpacked as `node_modules/nest-chat-system`, every other package a link to the project's
 * (so the host and the library share one copy of each peer, as npm would dedupe them).
 * `except` names project packages the host should not see. Returns the installed library's folder.
 */
export function installPackedLibrary(hostDir: string, except: string[] = []): string {
  const tarball = packedLibrary();
  const modules = join(hostDir, 'node_modules');
  mkdirSync(modules, { recursive: true });
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (entry === PACKAGE || except.includes(entry)) continue;
    if (!existsSync(join(modules, entry))) symlinkSync(join(ROOT, 'node_modules', entry), join(modules, entry));
  }
  const installed = join(modules, PACKAGE);
  mkdirSync(installed);
  run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], hostDir);
  return installed;
}

/** Compiles a host's TypeScript with the project's tsc (`tsconfig` relative to `hostDir`). */
export function compileHost(hostDir: string, tsconfig = 'tsconfig.json'): void {
  run(process.execPath, [TSC, '-p', join(hostDir, tsconfig)], hostDir);
}
