// @ts-check
/**
 * Errors in words, for the chat page and the Solver page: every error code of docs/protocol.md as a
 * sentence a reader can act on, a refused field (`invalid_message` with its `field`) as what to fix,
 * and the raw code with the server's message folded away in a "Details" disclosure (for a bug
 * report), never a bare `(github_error)`.
 */

/** @typedef {{ code?: string, message?: string, field?: string, retry_after_ms?: number }} ErrorLike */
/** What to show: the sentence, the folded detail, and the settings field to fix if any. @typedef {{ text: string, detail: string, setting?: string }} Problem */

/** @type {Record<string, string>} */
export const ERROR_TEXT = {
  invalid_json: 'The page sent something the server could not read. Reload the page and try again.',
  invalid_message: 'The server could not accept that.',
  unknown_type: 'The page and the server do not agree on what was sent. Reload the page.',
  model_not_configured: 'The server has no model API key yet (DEEPSEEK_API_KEY), so nothing can be answered. Ask whoever runs it to set one.',
  rate_limited: 'Too many messages. Please wait a moment.',
  upstream_auth: "The model service refused the server's API key. Whoever runs the server needs to check it.",
  upstream_quota: 'The model account has run out of balance. Whoever runs the server needs to top it up.',
  upstream_rate_limited: 'The model service is busy right now. Try again in a minute.',
  upstream_unavailable: 'The model service is not reachable right now. Try again in a minute.',
  upstream_timeout: 'The model stopped responding. Try again.',
  upstream_interrupted: 'The answer broke off. Try again.',
  upstream_bad_response: 'The model service sent something that is not an answer. Try again.',
  limit_exceeded: 'That goes over one of your limits.',
  not_found: 'That chat, message or run no longer exists.',
  github_error: 'GitHub could not be read for this issue.',
  internal: 'Something went wrong on the server. Try again.',
};

/** Codes whose server message is already plain words worth showing after the sentence (it names the limit, the issue…). */
const SAY_MESSAGE = new Set(['limit_exceeded', 'github_error']);

/**
 * A refused field in words: what to fix, not `options.temperature: …`. `setting` names the
 * chat page's settings field it belongs to, if any.
 * @param {string} field
 * @param {string} [message]
 * @returns {{ text: string, setting?: string } | null}
 */
export const fieldProblem = (field, message) => {
  const most = /at most ([\d,]+)/.exec(message || '');
  switch (field) {
    case 'options.temperature':
      return { setting: 'temperature', text: 'Temperature must be a number from 0 to 2.' };
    case 'options.max_tokens':
      return {
        setting: 'max_tokens',
        text: most ? `Max tokens can be at most ${most[1]} on this server.` : 'Max tokens must be a whole number of at least 1.',
      };
    case 'options.model':
      return { setting: 'model', text: 'That model is not available here. Pick another one in the model menu.' };
    case 'options.system_prompt':
      return { setting: 'system_prompt', text: 'The system prompt is too long: shorten it.' };
    case 'options.thinking':
      return { setting: 'thinking', text: 'Thinking must be on or off.' };
    case 'content':
      return { text: 'The message must be 1 to 32,000 characters: shorten it.' };
    case 'attachments':
      return { text: 'An attached file can no longer be used. Remove it and attach it again.' };
    case 'chat_id':
      return { text: 'This chat no longer exists. Start a new chat.' };
    case 'issue_url':
      return { text: 'That is not a GitHub issue URL. Paste one like https://github.com/OWNER/REPO/issues/123.' };
    default:
      return null;
  }
};

/** The server's words as a sentence (first letter up, a full stop at the end). @param {string | undefined} text */
export const sentence = (text) => {
  const t = String(text || '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
};

/**
 * An error frame (or a stored error) as what to show.
 * @param {ErrorLike} error
 * @returns {Problem}
 */
export const describeError = (error) => {
  const detail = [error.code, error.message].filter(Boolean).join(': ');
  if (error.code === 'invalid_message' && error.field) {
    const f = fieldProblem(error.field, error.message);
    if (f) return { ...f, detail };
  }
  if (error.code === 'rate_limited' && error.retry_after_ms) {
    return { text: `${ERROR_TEXT.rate_limited} Try again in ${Math.ceil(error.retry_after_ms / 1000)} s.`, detail };
  }
  const known = error.code ? ERROR_TEXT[error.code] : undefined;
  if (known && error.code && SAY_MESSAGE.has(error.code) && error.message) return { text: `${known} ${sentence(error.message)}`, detail };
  if (known) return { text: known, detail };
  // No code (a page's own failure): its message is all there is, and it is words already.
  if (!error.code && error.message) return { text: sentence(error.message), detail: '' };
  return { text: 'Something went wrong. Try again.', detail };
};

/**
 * Fills `box` with a sentence and, when there is one, the raw detail in a folded "Details".
 * @param {HTMLElement} box
 * @param {string} text
 * @param {string} [detail]
 */
export const fillError = (box, text, detail) => {
  const words = document.createElement('span');
  words.className = 'error-text';
  words.dataset.errorText = '';
  words.textContent = text;
  if (!detail) {
    box.replaceChildren(words);
    return;
  }
  const more = document.createElement('details');
  more.className = 'error-details';
  more.dataset.errorDetails = '';
  const summary = document.createElement('summary');
  summary.textContent = 'Details';
  const code = document.createElement('code');
  code.textContent = detail;
  more.append(summary, code);
  box.replaceChildren(words, ' ', more);
};
