// @ts-check
/**
 * Markdown to safe HTML (marked + DOMPurify), code blocks with highlight.js and a Copy button, and
 * the two ways an answer is drawn: whole (stored messages, every ended answer) and while it streams
 * (only the open tail is parsed again per frame).
 */
import { api, stats, T } from './chat-dom.js';

/** Code without a language is auto-detected only up to this size (highlightAuto tries them all). */
const AUTO_DETECT_MAX_CHARS = 20000;
/** While streaming, the last blocks stay open to change; everything before them is final. */
const OPEN_BLOCKS = 2;

/** @param {unknown} s */
export const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => /** @type {Record<string, string>} */ ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const SAFE_HREF = /^(https?:|mailto:)/i;

/**
 * marked's tokens: the page only reads `type` and `raw`, and hands them back to marked.
 * @typedef {{ type: string, raw: string }} Token
 * @typedef {Token[] & { links?: Record<string, unknown> }} TokenList
 */

/**
 * One Markdown setup for stored and streamed text alike: the same input gives the same HTML.
 * @type {{ fragment(src: string): DocumentFragment, fromTokens(tokens: Token[], links: Record<string, unknown> | null): DocumentFragment, lex(src: string): TokenList } | null}
 */
const markdown = (() => {
  if (!window.marked || !window.DOMPurify) return null;
  const instance = new window.marked.Marked({ gfm: true, breaks: false, async: false });
  instance.use({
    renderer: {
      // Raw HTML in an answer is shown as text: a chat about code quotes tags far more often than
      // it means them, and it keeps the sanitizer a second line of defence, not the only one.
      /** @param {{ text: string }} token */
      html: ({ text }) => escapeHtml(text),
      // Remote images would leak the reader's address to whoever the model names; link them instead.
      /** @param {{ href?: string, text?: string }} token */
      image: ({ href, text }) => `<a href="${escapeHtml(href || '')}">${escapeHtml(text || href || 'image')}</a>`,
    },
  });
  const purify = window.DOMPurify;
  purify.addHook('afterSanitizeAttributes', (/** @type {Element} */ node) => {
    if (node.nodeName !== 'A') return;
    const href = (node.getAttribute('href') || '').trim();
    if (href && SAFE_HREF.test(href)) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    } else {
      node.removeAttribute('href');
    }
  });
  const options = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'img', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'svg', 'math'],
    FORBID_ATTR: ['style', 'id', 'name'],
    RETURN_DOM_FRAGMENT: true,
  };
  return {
    fragment(src) {
      stats.parsedChars += src.length;
      return purify.sanitize(instance.parse(src || ''), options);
    },
    fromTokens(tokens, links) {
      /** @type {TokenList} */
      const list = tokens.slice();
      list.links = links || Object.create(null);
      return purify.sanitize(instance.parser(list), options);
    },
    lex(src) {
      stats.parsedChars += src.length;
      return instance.lexer(src);
    },
  };
})();

/** highlight.js (vendor script), when it loaded. @type {any} */
const hljs = window.hljs || null;
if (hljs) hljs.configure({ ignoreUnescapedHTML: true, throwUnescapedHTML: false });

/** @param {Element} code */
const languageOf = (code) => {
  const m = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
  return m ? m[1].toLowerCase() : '';
};

/**
 * Highlights one `code` element in place; `auto` allows guessing a language that is not named.
 * @param {HTMLElement} code
 * @param {boolean} auto
 */
const highlight = (code, auto) => {
  if (!hljs) return '';
  const named = languageOf(code);
  const text = code.textContent || '';
  /** @type {{ value?: string, language?: string, relevance: number } | null} */
  let result = null;
  try {
    if (named && hljs.getLanguage(named)) result = hljs.highlight(text, { language: named, ignoreIllegals: true });
    else if (!named && auto && text.length <= AUTO_DETECT_MAX_CHARS) result = hljs.highlightAuto(text);
  } catch (_) {
    result = null;
  }
  // highlight.js escapes the text it is given; its output holds only its own spans.
  if (result && result.value) code.innerHTML = result.value;
  code.classList.add('hljs');
  if (result && result.language && !named) code.classList.add(`language-${result.language}`);
  return named || (result && result.relevance > 3 ? result.language : '') || '';
};

/**
 * Wraps each `pre` with a header holding the language and a Copy button; highlights the code.
 * @param {ParentNode} root
 * @param {boolean} auto
 */
const decorateCode = (root, auto) => {
  for (const pre of Array.from(root.querySelectorAll('pre'))) {
    const code = pre.querySelector('code');
    if (!code || (pre.parentElement && pre.parentElement.classList.contains('code-block'))) continue;
    const lang = highlight(code, auto);
    const block = document.createElement('div');
    block.className = 'code-block';
    const head = document.createElement('div');
    head.className = 'code-head';
    const label = document.createElement('span');
    label.className = 'code-lang';
    label.textContent = lang || 'text';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'code-copy';
    copy.dataset.copyCode = '';
    copy.setAttribute('aria-label', `Copy ${lang ? `${lang} ` : ''}code`);
    copy.textContent = 'Copy';
    head.append(label, copy);
    pre.replaceWith(block);
    block.append(head, pre);
  }
};

/** A code block's Copy button. @param {HTMLElement} button */
export const copyCode = async (button) => {
  const block = button.closest('.code-block');
  const code = block && block.querySelector('pre code');
  if (!code) return;
  const text = code.textContent || '';
  if (await window.copyFromButton(button, text, 'Copy')) api.lastCopied = text;
};

/**
 * The whole text at once: stored messages, and every answer once it has ended.
 * @param {HTMLElement} content
 * @param {string} raw
 */
export const renderFull = (content, raw) => {
  if (!markdown) {
    content.textContent = raw;
    return;
  }
  const frag = markdown.fragment(raw);
  decorateCode(frag, true);
  content.replaceChildren(frag);
  stats.fullRenders += 1;
};

/**
 * Where a streaming answer's drawing stands: the text before `committed` is drawn for good in the
 * first `frozenNodes` nodes; `incremental` is false once a reference definition forces whole renders.
 * @typedef {{ committed: number, frozenNodes: number, incremental: boolean }} RenderState
 */

/**
 * An answer while it streams. The text is cut at block boundaries: blocks that can no longer change
 * (all but the last OPEN_BLOCKS) are rendered once and kept; only the open tail is parsed again on
 * each frame. The end frame renders the whole text with renderFull, so the final HTML is exactly the
 * stored one even where a later block would have changed an earlier one (a list that resumes, a
 * reference link defined further down).
 * @param {HTMLElement} content
 * @param {{ raw: string, render: RenderState }} st
 */
export const renderStreaming = (content, st) => {
  if (!markdown) {
    content.textContent = st.raw;
    return;
  }
  const r = st.render;
  if (content.childNodes.length < r.frozenNodes || r.committed > st.raw.length) {
    r.committed = 0;
    r.frozenNodes = 0;
    content.replaceChildren();
  }
  while (content.childNodes.length > r.frozenNodes && content.lastChild) content.lastChild.remove();
  if (!(r.incremental && T.incrementalRender)) {
    if (r.committed) {
      r.committed = 0;
      r.frozenNodes = 0;
      content.replaceChildren();
    }
    const frag = markdown.fragment(st.raw);
    decorateCode(frag, false);
    content.appendChild(frag);
    return;
  }
  const tail = st.raw.slice(r.committed);
  /** @type {Token[]} */
  let tokens = markdown.lex(tail);
  const links = /** @type {TokenList} */ (tokens).links;
  if (links && Object.keys(links).length) {
    // A reference definition changes text above it: render the whole text from now on.
    r.incremental = false;
    renderStreaming(content, st);
    return;
  }
  /** @type {number[]} */
  const blocks = [];
  tokens.forEach((t, i) => t.type !== 'space' && blocks.push(i));
  if (blocks.length > OPEN_BLOCKS) {
    const upto = blocks[blocks.length - OPEN_BLOCKS];
    const done = tokens.slice(0, upto);
    const chunk = done.map((t) => t.raw).join('');
    if (chunk && tail.startsWith(chunk)) {
      const frag = markdown.fromTokens(done, links || null);
      decorateCode(frag, true);
      content.appendChild(frag);
      r.frozenNodes = content.childNodes.length;
      r.committed += chunk.length;
      stats.committedBlocks += blocks.filter((i) => i < upto).length;
      tokens = tokens.slice(upto);
    }
  }
  const frag = markdown.fromTokens(tokens, null);
  // The open tail is re-rendered every frame: highlight named languages, guess only once it is final.
  decorateCode(frag, false);
  content.appendChild(frag);
};
