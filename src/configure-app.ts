import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostCheck } from './auth/host-check';
import { httpEdge, trustProxyValue } from './auth/http-edge';
import { importBody } from './chat/import-body';
import { HttpErrorFilter } from './common/http-error.filter';
import { isUnder, MountPoint } from './common/mount';
import { PageRenderer, ROOT_DIR } from './common/page-renderer';
import { Environment } from './config/environment';

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
 * Wires the chat system into an app that has routes of its own (the socket is TransportModule's own, set up
 * at bootstrap beside whatever adapter the host uses): the HTTP edge, static and vendor
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
  app.useGlobalFilters(new HttpErrorFilter(app.get(MountPoint), app.get(PageRenderer)));
  return app;
}

function wire(app: NestExpressApplication, ownsApp: boolean): NestExpressApplication {
  assertExpress(app);
  const env = app.get(Environment);
  const mount = app.get(MountPoint);
  // Express's trust-proxy is app-wide: a host that mounts us keeps its own (and our limits follow it).
  const trustProxy = trustProxyValue(env.TRUST_PROXY);
  if (ownsApp && trustProxy !== undefined) app.set('trust proxy', trustProxy);
  // Every path below is read per request from the mount point: its base path is final only at init
  // (a host may call setGlobalPrefix after us), and no request comes before.
  app.use(ourEdge(mount, httpEdge(app.get(HostCheck)), securityHeaders(), ownsApp));
  // Before Nest's own JSON parser (added at init), so an export bigger than its 100 KB can come back.
  const importParser = importBody(env.IMPORT_MAX_BYTES);
  app.use((req: Request, res: Response, next: NextFunction) => (req.path === mount.path('/api/chats/import') ? importParser(req, res, next) : next()));
  app.use(ourAssets(mount, ownsApp));
  // Our pages render with our own Handlebars (PageRenderer), never through the app's view engine:
  // no views folder, engine or app.locals of the app is set or read.
  return app;
}

/** Host check, HSTS and our security headers: every request of a standalone server, our paths only in a host. */
function ourEdge(mount: MountPoint, edge: RequestHandler, headers: RequestHandler, ownsApp: boolean): RequestHandler {
  return (req, res, next) => {
    if (!ownsApp && !mount.owns(req.path, OWN_PATHS)) return next();
    edge(req, res, (error?: unknown) => (error ? next(error) : headers(req, res, next)));
  };
}

/**
 * Our static files (`<base>/static/<file of public/>`), the browser libraries (`<base>/vendor/…`)
 * and, under a route prefix of ours, `GET <prefix>` leading to the chat (with no prefix of ours
 * `GET /` stays the host's; the standalone server owns it).
 */
function ourAssets(mount: MountPoint, ownsApp: boolean): RequestHandler {
  const publicDir = join(ROOT_DIR, 'public');
  const statics = new Set(readdirSync(publicDir));
  const vendor = new Map(Object.entries(VENDOR_FILES).map(([name, [pkg, path]]) => [name, packageFile(pkg, path)]));
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const base = mount.basePath;
    if (!isUnder(req.path, base)) return next();
    const rest = req.path.slice(base.length);
    if ((rest === '' || rest === '/') && (ownsApp || mount.routePrefix)) return res.redirect(302, mount.path('/chat'));
    const [, dir, name] = /^\/(static|vendor)\/([^/]+)$/.exec(rest) ?? [];
    if (dir === 'static' && statics.has(name)) return res.sendFile(join(publicDir, name), { maxAge: '1h' });
    const file = dir === 'vendor' ? vendor.get(name) : undefined;
    if (file) return res.sendFile(file, { maxAge: '1d' });
    next();
  };
}
