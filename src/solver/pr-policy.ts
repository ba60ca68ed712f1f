/**
 * What a Solver run may push. A pull request is written with the operator's GITHUB_TOKEN, and the
 * issue that steered the model is anyone's: who may ask (SOLVER_PR), where (SOLVER_PR_REPOS), and
 * never a change to a file that CI or a build runs.
 */
import type { FileOutcome } from './patch';

export type PrSetting = 'admin' | 'everyone' | 'off';

/** Why this user may not open pull requests at all; undefined when they may. */
export function prRefusalFor(setting: PrSetting, isAdmin: boolean): string | undefined {
  if (setting === 'off') return 'opening pull requests is turned off on this server (SOLVER_PR=off)';
  if (setting === 'admin' && !isAdmin) return "opening pull requests is the admin's alone on this server (SOLVER_PR=admin)";
  return undefined;
}

/** `owner/repo` patterns, comma-separated, `*` matching any run of characters; case-insensitive. */
export function repoPatterns(setting: string | undefined): RegExp[] | undefined {
  const items = (setting ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length) return undefined;
  return items.map((item) => new RegExp(`^${item.split('*').map(escapeRegExp).join('[^]*')}$`, 'i'));
}

/** Why a pull request may not go to `fullNames` (every name the repository goes by); undefined when it may. */
export function repoRefusal(patterns: RegExp[] | undefined, fullNames: string[]): string | undefined {
  if (!patterns) return undefined;
  const outside = fullNames.find((name) => !patterns.some((p) => p.test(name)));
  return outside ? `${outside} is not among the repositories pull requests may be opened on (SOLVER_PR_REPOS)` : undefined;
}

const CI_DIRS = /^(\.github|\.circleci|\.buildkite|\.husky|\.gitlab|\.devcontainer)\//i;
const CI_NAMES = new Set(
  [
    '.gitlab-ci.yml',
    '.travis.yml',
    'azure-pipelines.yml',
    'jenkinsfile',
    'appveyor.yml',
    '.pre-commit-config.yaml',
    'makefile',
    'gnumakefile',
    'dockerfile',
    'containerfile',
    'docker-compose.yml',
    'docker-compose.yaml',
    'compose.yml',
    'compose.yaml',
    'setup.py',
    'build.rs',
    'noxfile.py',
    'tox.ini',
    'rakefile',
    'justfile',
    'taskfile.yml',
    // lockfiles: what gets installed (and their install scripts run)
    'package-lock.json',
    'npm-shrinkwrap.json',
    'yarn.lock',
    'pnpm-lock.yaml',
    'bun.lockb',
    'cargo.lock',
    'go.sum',
    'poetry.lock',
    'pipfile.lock',
    'composer.lock',
    'gemfile.lock',
    'mix.lock',
    'pubspec.lock',
    'uv.lock',
    '.npmrc',
    '.yarnrc',
    '.yarnrc.yml',
  ].map((n) => n.toLowerCase()),
);
const CI_SUFFIXES = /(\.mk|\.dockerfile)$|^dockerfile\.|^containerfile\./i;
/** Manifests whose `scripts` run on install, test or build. */
const SCRIPT_MANIFESTS = new Set(['package.json', 'composer.json']);

/**
 * Why a changed file may never be pushed by the Solver: it is run by CI or a build (workflows and
 * actions, Makefiles, Dockerfiles, lockfiles, a manifest's `scripts`); undefined when it is safe.
 */
export function ciRunReason(file: Pick<FileOutcome, 'path' | 'before' | 'after'>): string | undefined {
  const name = file.path.slice(file.path.lastIndexOf('/') + 1).toLowerCase();
  if (CI_DIRS.test(file.path)) return `the patch changes ${file.path}, which CI runs`;
  if (CI_NAMES.has(name) || CI_SUFFIXES.test(name)) return `the patch changes ${file.path}, which CI or the build runs`;
  if (SCRIPT_MANIFESTS.has(name) && scriptsOf(file.before) !== scriptsOf(file.after)) return `the patch changes the scripts of ${file.path}, which CI runs`;
  return undefined;
}

/** The `scripts` of a manifest as comparable text; a manifest that does not parse counts as changed. */
function scriptsOf(text: string | undefined): string {
  if (text === undefined) return 'null';
  try {
    const parsed = JSON.parse(text) as { scripts?: unknown };
    return JSON.stringify(parsed?.scripts ?? null);
  } catch {
    return `unparsable:${text}`;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
