/**
 * Small, pure helpers for the differences between OpenAI-compatible servers (DeepSeek, vLLM,
 * Ollama, llama.cpp server, OpenRouter, strict proxies). See docs/providers.md.
 */

/** `LLM_THINKING_FIELD`: where DeepSeek's `thinking` request field is sent. */
export type ThinkingFieldMode = 'auto' | 'deepseek' | 'none';

/** DeepSeek's own API model names (deepseek-v4-flash, deepseek-v4-pro, the retired chat/reasoner). */
const DEEPSEEK_API_MODEL = /^deepseek-(v\d[\w.-]*|chat|reasoner)$/i;

/**
 * Whether DeepSeek's `thinking` field goes out with a request.
 * - `deepseek`: always (when the request sets thinking); `none`: never;
 * - `auto` (the default): when the base URL's host is DeepSeek's (`*.deepseek.com`), or when the model
 *   has one of DeepSeek's own API names (`deepseek-v4-flash`, …: DeepSeek behind a proxy, or a test
 *   double). Any other server, e.g. Ollama's `deepseek-r1:8b` or vLLM's `deepseek-ai/…`, does not
 *   get it.
 */
export function sendsThinkingField(mode: ThinkingFieldMode | undefined, baseUrl: string, model: string): boolean {
  if (mode === 'deepseek') return true;
  if (mode === 'none') return false;
  return isDeepSeekHost(baseUrl) || DEEPSEEK_API_MODEL.test(model.trim());
}

export function isDeepSeekHost(baseUrl: string): boolean {
  try {
    const host = new URL(baseUrl.trim()).hostname.toLowerCase();
    return host === 'deepseek.com' || host.endsWith('.deepseek.com');
  } catch {
    return false;
  }
}

/** Request fields we add ourselves, and may leave out when a server refuses them. */
export const OPTIONAL_PARAMS = ['thinking', 'reasoning_effort', 'stream_options', 'response_format'] as const;
export type OptionalParam = (typeof OPTIONAL_PARAMS)[number];

/** The wording servers use for a field they do not accept. */
const UNSUPPORTED_WORDING =
  /unrecogni[sz]ed|unknown (request )?(field|param|argument|key|name|propert)|unsupported|not supported|not permitted|extra[ _](fields?|inputs?|keys?|param|arguments?|forbidden)|not allowed|additional ?propert|unexpected (keyword|field|argument|param|propert)/i;

function mentions(text: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`, 'i').test(text);
}

export interface UnsupportedVerdict {
  /** Fields to leave out on the retry. */
  params: OptionalParam[];
  /** The server named them (remember at once), or only said "unknown field" (remember once the retry worked). */
  named: boolean;
}

/**
 * Reads a 400/422 answer: does it refuse one of our optional fields that `body` carries?
 * `errorBody` is the OpenAI-shaped `error` object (see `normalizeErrorBody`).
 */
export function unsupportedParams(
  status: number | undefined,
  errorBody: unknown,
  body: Record<string, unknown>,
  skip: ReadonlySet<string> = new Set(),
): UnsupportedVerdict | undefined {
  if (status !== 400 && status !== 422) return undefined;
  const candidates = OPTIONAL_PARAMS.filter((p) => p in body && !skip.has(p));
  if (candidates.length === 0) return undefined;
  const e = (errorBody && typeof errorBody === 'object' ? errorBody : {}) as Record<string, unknown>;
  const param = typeof e.param === 'string' ? e.param.replace(/^body\./, '') : undefined;
  let text = '';
  try {
    text = typeof errorBody === 'string' ? errorBody : JSON.stringify(errorBody ?? '');
  } catch {
    text = String(errorBody);
  }
  const wording = UNSUPPORTED_WORDING.test(text);

  const named = candidates.filter((p) => param === p || (wording && mentions(text, p)));
  if (named.length) return { params: named, named: true };
  if (!wording) return undefined;
  // "Unrecognized request argument" without a name: only ours are unusual, unless the text names
  // another field (of the request, or one of ours already left out): then nothing of ours helps.
  const others = [...Object.keys(body), ...OPTIONAL_PARAMS].filter((k) => !(candidates as string[]).includes(k));
  if (others.some((k) => mentions(text, k)) || (param && !candidates.includes(param as OptionalParam))) {
    return undefined;
  }
  return { params: candidates, named: false };
}

/** OpenAI's error object: the server's words in `message`, with its `type`, `param` and `code` (more fields may stay). */
export interface ErrorObject {
  message: string;
  type: unknown;
  param: unknown;
  code: unknown;
  [field: string]: unknown;
}

/**
 * Any error payload as OpenAI's error object, whatever shape the server used: `{"error":{…}}`
 * (kept whole), vLLM's top-level `{"object":"error","message":…}`, Ollama's `{"error":"…"}`,
 * FastAPI's `{"detail":[{"loc","msg"}]}`, or text (an HTML error page by its title). The one reader
 * of error shapes: for error answers (`normalizeErrorBody`) and errors inside a stream.
 */
export function errorObject(payload: unknown): ErrorObject {
  if (typeof payload === 'string') return { message: htmlToText(payload).trim().slice(0, 1000), type: null, param: null, code: null };
  if (!payload || typeof payload !== 'object' || Array.isArray(payload))
    return { message: stringify(payload).slice(0, 1000), type: null, param: null, code: null };
  const o = payload as Record<string, unknown>;
  const e = o.error;
  if (e && typeof e === 'object' && !Array.isArray(e)) {
    const inner = e as Record<string, unknown>;
    if (typeof inner.message === 'string') return inner as ErrorObject;
    return { type: null, param: null, code: null, ...inner, message: stringify(inner.message ?? inner.detail ?? inner.msg ?? inner).slice(0, 1000) };
  }
  const field = (k: string) => (o[k] === undefined ? null : o[k]);
  // A top-level status (a bare error object inside a stream) still names the failure.
  const status = o.status === undefined ? {} : { status: o.status };
  if (typeof e === 'string') return { message: e, type: field('type'), param: field('param'), code: field('code'), ...status };
  if (typeof o.message === 'string') return { message: o.message, type: field('type'), param: field('param'), code: field('code'), ...status };
  if (o.detail !== undefined) {
    const { message, param } = describeDetail(o.detail);
    return { message, type: 'invalid_request_error', param, code: null };
  }
  return { message: stringify(o.msg ?? o).slice(0, 1000), type: field('type'), param: field('param'), code: field('code'), ...status };
}

/**
 * Rewrites an error answer into OpenAI's `{"error":{"message","type","param","code"}}` (see
 * `errorObject`), so the SDK keeps the server's words. A body already in that shape is kept as it came.
 */
export function normalizeErrorBody(text: string): string {
  if (!text.trim()) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return JSON.stringify({ error: errorObject(text) });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return JSON.stringify({ error: errorObject(text) });
  const o = parsed as Record<string, unknown>;
  const inner = o.error && typeof o.error === 'object' && !Array.isArray(o.error) ? (o.error as Record<string, unknown>) : undefined;
  if (typeof inner?.message === 'string') return text;
  return JSON.stringify(inner ? { ...o, error: errorObject(o) } : { error: errorObject(o) });
}

/** True when a body is an HTML page (an error page of a proxy or a captive portal), not JSON or events. */
export function isHtmlPage(text: string): boolean {
  return /^\s*(<!doctype html|<html|<head|<body|<title)/i.test(text);
}

/** Where streamed chat completions are posted: the base URL (as configured) + `/chat/completions`. */
export function completionsUrl(baseUrl: string): URL {
  return new URL(`${baseUrl.trim().replace(/\/+$/, '')}/chat/completions`);
}

/** An HTML error page (a proxy's 502, a captive portal) as its `<title>`, else the text as it came. */
function htmlToText(text: string): string {
  if (!isHtmlPage(text)) return text;
  return htmlTitle(text) ?? 'an HTML page';
}

/** The `<title>` of an HTML page, on one line, or undefined. */
export function htmlTitle(html: string): string | undefined {
  const m = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  const title = m?.[1]
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
  return title ? title.slice(0, 200) : undefined;
}

/** FastAPI / pydantic `detail`: a string, or `[{loc: ['body', 'thinking'], msg}]`. */
function describeDetail(detail: unknown): { message: string; param: string | null } {
  if (typeof detail === 'string') return { message: detail, param: null };
  if (Array.isArray(detail)) {
    let param: string | null = null;
    const parts = detail.map((d) => {
      if (!d || typeof d !== 'object') return String(d);
      const item = d as { loc?: unknown; msg?: unknown };
      const loc = Array.isArray(item.loc) ? item.loc.filter((x) => x !== 'body').map(String) : [];
      if (loc.length && param === null) param = loc.join('.');
      const msg = typeof item.msg === 'string' ? item.msg : JSON.stringify(item);
      return loc.length ? `${loc.join('.')}: ${msg}` : msg;
    });
    return { message: parts.join('; ').slice(0, 1000), param };
  }
  return { message: JSON.stringify(detail).slice(0, 1000), param: null };
}

/** About four characters a token: for servers that report no usage. */
export function estimateTokens(chars: number): number {
  return Math.ceil(Math.max(0, chars) / 4);
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
