import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Response } from 'express';
import helmet from 'helmet';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostCheck } from './auth/host-check';
import { httpEdge, trustProxyValue } from './auth/http-edge';
import { importBody } from './chat/import-body';
import { HttpErrorFilter } from './common/http-error.filter';
import { MountPoint } from './common/mount';
import { Environment } from './config/environment';

/** The project root (holds views/ and public/), from src/ under ts-jest and dist/ in production. */
export const ROOT_DIR = join(__dirname, '..');

/** Browser libraries served from their npm packages: the app works offline, no CDN. */
const VENDOR_FILES: Record<string, [string, string]> = {
  'htmx.min.js': ['htmx.org', 'dist/htmx.min.js'],
  'marked.umd.js': ['marked', 'lib/marked.umd.js'],
  'purify.min.js': ['dompurify', 'dist/purify.min.js'],
  'highlight.min.js': ['@highlightjs/cdn-assets', 'highlight.min.js'],
  'highlight-github.min.css': ['@highlightjs/cdn-assets', 'styles/github.min.css'],
  'highlight-github-dark.min.css': ['@highlightjs/cdn-assets', 'styles/github-dark.min.css'],
};

/** A file inside an installed package, whatever its `exports` map allows. */
function packageFile(pkg: string, file: string): string {
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    entry = require.resolve(`${pkg}/package.json`); // a package of assets only: no main, no exports
  }
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json')) || !dir.endsWith(pkg)) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`package ${pkg} not found`);
    dir = up;
  }
  return join(dir, file);
}

/** Template helpers (hbs keeps one global registry; registering twice is harmless). */
function registerViewHelpers(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- hbs ships no types; the require is typed to the two calls made here
  const hbs = require('hbs') as { registerHelper(name: string, fn: (...args: unknown[]) => unknown): void; registerPartial(name: string, text: string): void };
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  // Every file of views/partials is a partial named after it (`{{> account_menu}}`).
  const partials = join(ROOT_DIR, 'views', 'partials');
  for (const file of readdirSync(partials).filter((name) => name.endsWith('.hbs'))) {
    hbs.registerPartial(file.slice(0, -'.hbs'.length), readFileSync(join(partials, file), 'utf8'));
  }
}

/** The security headers of our pages: same-origin resources only, no inline script, no framing. */
function securityHeaders() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
    },
    // Pages load only same-origin resources; COEP would only get in the way of embedding hosts.
    crossOriginEmbedderPolicy: false,
    // Keeps our origin on same-origin requests (Chromium sends `Origin: null` on a form POST under
    // `no-referrer`) and sends nothing to other sites. HSTS is httpEdge's: https requests only.
    referrerPolicy: { policy: 'same-origin' },
    strictTransportSecurity: false,
  });
}

/** Our middleware, views and static files are Express's: another HTTP adapter fails here, not at the first request. */
function assertExpress(app: NestExpressApplication): void {
  const type = app.getHttpAdapter().getType();
  if (type !== 'express') {
    throw new Error(
      `nest-chat-system runs on Express only, and this app uses the ${type} HTTP adapter: create it with ` +
        `NestFactory.create<NestExpressApplication>(AppModule) (@nestjs/platform-express), or serve the chat from an Express app of its own`,
    );
  }
}

/** Where our pages and assets live when we share the server and have no prefix of our own. */
const OWN_PATHS = ['/chat', '/share', '/login', '/signup', '/solver', '/static', '/vendor'];

/**
 * Wires the chat system into an app that has routes of its own: the WebSocket adapter (one per app,
 * so the host's gateways go through it too), our views (added after the host's), static and vendor
 * files and security headers under the route prefix. Unlike `configureApp`, it sets no global
 * filter, pipe or header: the host's routes stay as they were.
 */
export function configureChatSystem(app: NestExpressApplication): NestExpressApplication {
  return wire(app, false);
}

/**
 * The one place that wires the standalone server, where the chat system owns the whole app:
 * `configureChatSystem` plus app-wide headers, the error page for unknown routes and the favicon.
 * `main.ts` and every end-to-end test call it, so tests run the real wiring.
 */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  wire(app, true);
  app.disable('x-powered-by');
  const express = app.getHttpAdapter().getInstance();
  express.get('/favicon.ico', (_req: unknown, res: Response) => res.status(204).end());
  // Our controllers carry the filter (and guard and validation) themselves; the global one is for
  // what no route matched: the 404 page.
  app.useGlobalFilters(new HttpErrorFilter(app.get(MountPoint)));
  return app;
}

function wire(app: NestExpressApplication, ownsApp: boolean): NestExpressApplication {
  assertExpress(app);
  const env = app.get(Environment);
  const mount = app.get(MountPoint);
  const base = mount.basePath;
  // Express's trust-proxy is app-wide: a host that mounts us keeps its own (and our limits follow it).
  const trustProxy = trustProxyValue(env.TRUST_PROXY);
  if (ownsApp && trustProxy !== undefined) app.set('trust proxy', trustProxy);
  const edge = httpEdge(app.get(HostCheck));
  if (ownsApp) app.use(edge, securityHeaders());
  else app.use(base ? [base] : OWN_PATHS.map((path) => mount.path(path)), edge, securityHeaders());
  // Before Nest's own JSON parser (added at init), so an export bigger than its 100 KB can come back.
  app.use(mount.path('/api/chats/import'), importBody(env.IMPORT_MAX_BYTES));

  const express = app.getHttpAdapter().getInstance();
  // Our root leads to the chat; with no prefix of ours, `/` is the host's (the standalone server owns it).
  if (ownsApp || base) express.get(base || '/', (_req: unknown, res: Response) => res.redirect(302, mount.path('/chat')));
  const views = join(ROOT_DIR, 'views');
  if (ownsApp) {
    app.setBaseViewsDir(views);
    app.setViewEngine('hbs');
    // Compiled templates are kept (Express only does so by itself with NODE_ENV=production).
    express.set('view cache', true);
  } else {
    // The host's own views come first; its view engine stays the default when it has one.
    const current = express.get('views') as string | string[] | undefined;
    express.set('views', [...[current ?? []].flat().filter((dir) => dir !== views), views]);
    if (!express.get('view engine')) app.setViewEngine('hbs');
  }
  // Every page of ours renders these: templates and the page script build their URLs from them.
  express.locals.basePath = base;
  express.locals.wsPath = mount.wsPath;
  express.locals.loginPath = mount.loginPath ?? '';
  registerViewHelpers();
  app.useStaticAssets(join(ROOT_DIR, 'public'), { prefix: mount.path('/static/'), maxAge: '1h' });
  for (const [name, [pkg, path]] of Object.entries(VENDOR_FILES)) {
    const file = packageFile(pkg, path);
    express.get(mount.path(`/vendor/${name}`), (_req: unknown, res: Response) => res.sendFile(file, { maxAge: '1d' }));
  }
  return app;
}
