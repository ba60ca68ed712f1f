import { ValidationPipe } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import type { Response } from 'express';
import helmet from 'helmet';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AuthService } from './auth/auth.service';
import { HttpErrorFilter } from './common/http-error.filter';
import { Environment } from './config/environment';
import { ConnectionRegistry } from './transport/connection-registry';
import { FrameWsAdapter } from './transport/frame-ws.adapter';

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
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const hbs = require('hbs') as { registerHelper(name: string, fn: (...args: unknown[]) => unknown): void };
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
}

/**
 * The one place that wires an app: WebSocket adapter, views, static files, error mapping. `main.ts`
 * and every end-to-end test call it, so tests run the real wiring.
 */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  const env = app.get(Environment);
  app.useWebSocketAdapter(
    new FrameWsAdapter(app, app.get(ConnectionRegistry), {
      maxPayload: env.WS_MAX_PAYLOAD,
      pingIntervalMs: env.WS_PING_INTERVAL_MS,
      authenticate: app.get(AuthService).authenticateUpgrade,
    }),
  );
  app.disable('x-powered-by');
  app.use(
    helmet({
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
    }),
  );
  app.setBaseViewsDir(join(ROOT_DIR, 'views'));
  app.setViewEngine('hbs');
  registerViewHelpers();
  app.useStaticAssets(join(ROOT_DIR, 'public'), { prefix: '/static/', maxAge: '1h' });
  const express = app.getHttpAdapter().getInstance();
  for (const [name, [pkg, path]] of Object.entries(VENDOR_FILES)) {
    const file = packageFile(pkg, path);
    express.get(`/vendor/${name}`, (_req: unknown, res: Response) => res.sendFile(file, { maxAge: '1d' }));
  }
  express.get('/favicon.ico', (_req: unknown, res: Response) => res.status(204).end());
  app.useGlobalFilters(new HttpErrorFilter());
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, transform: true }));
  return app;
}
