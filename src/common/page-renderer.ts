import { Injectable, Optional } from '@nestjs/common';
import type { Response } from 'express';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MountPoint } from './mount';

/** The project root (holds views/ and public/), from src/ under ts-jest and dist/ in production. */
export const ROOT_DIR = join(__dirname, '..', '..');
const VIEWS = join(ROOT_DIR, 'views');

type Template = (context: object) => string;
interface HandlebarsEnv {
  Utils: { escapeExpression(text: string): string };
  compile(source: string): Template;
  registerHelper(name: string, fn: (...args: unknown[]) => unknown): void;
  registerPartial(name: string, source: string): void;
}

/** What a page of ours may be given besides its own values. */
export interface PageOptions {
  /** A layout under views/ (`'layouts/chat_base'`) that gets the page as `{{{body}}}`; default none. */
  layout?: string | false;
  status?: number;
}

/**
 * Renders our pages with a Handlebars environment of our own, never through Express's view engine:
 * a host's engine (EJS, Pug, its own hbs), its views folder, its `app.locals` and its helpers and
 * partials neither reach our templates nor are reached by ours (`eq`, `account_menu`), and a host's
 * `not_found.hbs` is not ours. The mount's paths (`basePath`, `wsPath`, `loginPath`, `pageScript`)
 * and the account menu (`res.locals.account`, set by AuthGuard) go into every render call.
 */
@Injectable()
export class PageRenderer {
  private readonly env: HandlebarsEnv;
  private readonly templates = new Map<string, Template>();

  constructor(@Optional() private readonly mount: MountPoint = new MountPoint()) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- hbs ships no types; create() gives a private Handlebars environment
    const hbs = require('hbs') as { create(): { handlebars: HandlebarsEnv } };
    this.env = hbs.create().handlebars;
    this.env.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    // Every file of views/partials is a partial named after it (`{{> account_menu}}`).
    const partials = join(VIEWS, 'partials');
    for (const file of readdirSync(partials).filter((name) => name.endsWith('.hbs'))) {
      this.env.registerPartial(file.slice(0, -'.hbs'.length), readFileSync(join(partials, file), 'utf8'));
    }
  }

  /** The HTML of `view` (a path under views/ without `.hbs`). */
  html(view: string, values: object, res?: Response, layout?: string | false): string {
    const context = {
      basePath: this.mount.basePath,
      wsPath: this.mount.wsPath,
      loginPath: this.mount.loginPath ?? '',
      pageScript: this.mount.pageScript ?? '',
      account: (res?.locals as { account?: unknown } | undefined)?.account,
      ...values,
    };
    const body = this.template(view)(context);
    const html = layout ? this.template(layout)({ ...context, body }) : body;
    return this.withPageScript(html);
  }

  /** Sends `view` as the answer (text/html), with `options.status` (default 200). */
  render(res: Response, view: string, values: object, options: PageOptions = {}): void {
    const html = this.html(view, values, res, options.layout);
    res
      .status(options.status ?? 200)
      .type('html')
      .send(html);
  }

  /**
   * The host's `pageScript` goes before the page's first script (all are `defer`: they run in
   * order, so page.js finds `window.chatSystem`), whatever the template's head looks like.
   */
  private withPageScript(html: string): string {
    const script = this.mount.pageScript;
    if (!script) return html;
    const at = html.indexOf('<script');
    if (at < 0) return html;
    return `${html.slice(0, at)}<script src="${this.env.Utils.escapeExpression(script)}" defer></script>\n  ${html.slice(at)}`;
  }

  private template(view: string): Template {
    let template = this.templates.get(view);
    if (!template) {
      template = this.env.compile(readFileSync(join(VIEWS, `${view}.hbs`), 'utf8'));
      this.templates.set(view, template);
    }
    return template;
  }
}
