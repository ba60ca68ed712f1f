// @ts-check
/**
 * What every part of the chat page uses: element lookups, the shown chat, the page's timings and
 * counters, requests to the server, the screen-reader announcer, and the wire types
 * (docs/protocol.md).
 */

/**
 * A frame of the page socket, either way (docs/protocol.md "WebSocket frames"); only the fields
 * the page reads.
 * @typedef {{
 *   type: string, id?: string, chat_id?: string, message_id?: string, seq?: number,
 *   content?: string, reasoning?: string, title?: string, status?: string, finish_reason?: string,
 *   usage?: Record<string, number>, model?: string, omitted_turns?: number,
 *   previous_versions?: string[], attempt?: number, max_attempts?: number, code?: string,
 *   message?: string, field?: string, retry_after_ms?: number, attachments?: FileInfo[],
 *   after_seq?: number, options?: Record<string, unknown>
 * }} Frame
 */

/** An uploaded file (POST /api/files): what a chip shows. @typedef {{ id: string, name: string, size: number }} FileInfo */

/**
 * Timings. Tests may shorten them by defining `window.__chatTuning` before the page's scripts run
 * (numbers only, unknown keys ignored); the socket's own (backoff, pings) are read by page.js.
 * @type {{ ackTimeoutMs: number, incrementalRender: number }}
 */
export const T = {
  ackTimeoutMs: 60000,
  /** 1: re-parse only the open tail of a streaming answer per frame; 0: the whole text (for measuring). */
  incrementalRender: 1,
};
if (window.__chatTuning && typeof window.__chatTuning === 'object') {
  for (const [k, v] of Object.entries(window.__chatTuning)) if (k in T && typeof v === 'number') T[/** @type {keyof typeof T} */ (k)] = v;
}

/** Where the server mounted the chat ('' when it owns the site). */
export const BASE = document.documentElement.dataset.basePath || '';

/** Render costs, for tests and for measuring (read `window.__chat.stats` in the console). */
export const stats = { frames: 0, renderMs: 0, maxFrameMs: 0, parsedChars: 0, fullRenders: 0, committedBlocks: 0 };

/**
 * What tests and the console read: `window.__chat`.
 * @type {{ stats: typeof stats, lastCopied: string | null, tuning: typeof T }}
 */
export const api = { stats, lastCopied: null, tuning: T };
window.__chat = api;

/**
 * @param {string} sel
 * @param {ParentNode} [root]
 * @returns {HTMLElement | null}
 */
export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * @param {string} sel
 * @param {ParentNode} [root]
 * @returns {HTMLElement[]}
 */
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** The shown chat's section (`#chat-content`, swapped by htmx on every chat change). */
export const view = () => document.getElementById('chat-content');

/** The id of the chat on show ('' for a new chat). */
export const shownChatId = () => view()?.dataset.chatId || '';

/** @param {string} s */
export const cssEscape = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&'));

/** A shown message by its id. @param {string} id */
export const messageEl = (id) => {
  const v = view();
  return v ? $(`[data-message-id="${cssEscape(id)}"]`, v) : null;
};

/** Whether a frame belongs to the chat on show. @param {Frame} frame */
export const isShown = (frame) => !!frame.chat_id && frame.chat_id === shownChatId();

/** Whether this is a shared chat's read-only page. */
export const readonly = () => document.body.hasAttribute('data-readonly');

/**
 * A same-origin JSON request.
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 */
export const request = (method, url, body) =>
  fetch(url, {
    method,
    credentials: 'same-origin',
    headers: body ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });

/** A GET of JSON. @param {string} url */
export const getJson = (url) => fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });

/** The server's own sentence for a refused request (a limit says which), or its status. @param {Response} res */
export const refusal = async (res) => {
  try {
    const body = await res.json();
    if (body && typeof body.message === 'string' && body.message) return body.message;
  } catch (_) {
    // not JSON: the status is all there is
  }
  return `the server answered ${res.status}.`;
};

export const newClientId = () =>
  window.crypto && typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

const ANNOUNCE_MAX_CHARS = 600;

/** Reads `text` out to screen readers (the page's one live region). @param {string} text */
export const announce = (text) => {
  const region = $('[data-announcer]');
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick makes screen readers announce repeated text too.
  setTimeout(() => {
    region.textContent = text.length > ANNOUNCE_MAX_CHARS ? `${text.slice(0, ANNOUNCE_MAX_CHARS)}…` : text;
  }, 50);
};

/** @param {number | string | undefined} n */
export const formatSize = (n) => {
  const b = Number(n) || 0;
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(b < 10240 ? 1 : 0)} KB`;
  return `${(b / 1048576).toFixed(1)} MB`;
};

/**
 * `parent`'s child marked `attr`, made (as `tag` with `className`) when it has none yet.
 * @param {HTMLElement} parent
 * @param {string} attr
 * @param {string} tag
 * @param {string} className
 * @returns {HTMLElement}
 */
export const ensureChild = (parent, attr, tag, className) => {
  let child = $(`[${attr}]`, parent);
  if (!child) {
    child = document.createElement(tag);
    child.className = className;
    child.setAttribute(attr, '');
    parent.appendChild(child);
  }
  return child;
};
