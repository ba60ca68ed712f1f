// @ts-check
/**
 * The message box: sending (a message, a Continue, a regenerate, an edit as a new branch), the sends waiting for the server,
 * a refused send taken back into the box, Stop, the one no-key notice, attached files (Attach,
 * paste and drop take one path), the suggestion chips, and the box's enabled state.
 */
import { $, $$, BASE, T, announce, newClientId, refusal, shownChatId, view } from './chat-dom.js';
import { openEditor, refresh as refreshMessageActions } from './message-actions.js';
import {
  actionsOf,
  chipList,
  clearFormError,
  createMessage,
  renderChips,
  renderMessage,
  scrollToBottom,
  showCurrentVersions,
  showError,
  stateOf,
} from './chat-render.js';
import { changed, checkSettings, openSettings, takeOptions } from './chat-settings.js';
import { sendFrame } from './chat-socket.js';

/** @typedef {import('./chat-dom.js').FileInfo} FileInfo */

/**
 * A send made from this page that has not started an answer yet. An edit's (`edit`) hid the
 * edited message and what followed it while the server stores the new branch.
 * @typedef {{
 *   chatId: string, el: HTMLElement, content: string, fromBox: boolean,
 *   options: Record<string, unknown> | null, files: FileInfo[], acked: boolean,
 *   timer: ReturnType<typeof setTimeout>, edit?: { of: HTMLElement, hidden: HTMLElement[] }
 * }} PendingSend
 */

/** Sends made from this page that have not started an answer yet, by their client id. @type {Map<string, PendingSend>} */
export const pendingSends = new Map();

/** Uploaded files waiting for the next message. @type {FileInfo[]} */
let pendingFiles = [];

const form = () => {
  const v = view();
  return v ? /** @type {HTMLFormElement | null} */ ($('form[data-chat-form]', v)) : null;
};
export const textarea = () => {
  const f = form();
  return f ? /** @type {HTMLTextAreaElement | null} */ ($('textarea[name=content]', f)) : null;
};

export const streamingMessages = () => {
  const v = view();
  return v ? $$('[data-role="assistant"][data-status="streaming"]', v) : [];
};

/** Something streams or waits for the server. */
export const busyNow = () => {
  if (streamingMessages().length > 0) return true;
  for (const p of pendingSends.values()) if (p.el.isConnected) return true;
  return false;
};

/** Enables or disables the message box; `refocus` returns the focus to it once it is free again. */
export const updateComposer = (refocus = false) => {
  const f = form();
  if (!f) return;
  const streaming = streamingMessages();
  const busy = busyNow();
  const ta = textarea();
  const send = /** @type {HTMLButtonElement | null} */ ($('[data-send]', f));
  const stop = $('[data-stop]', f);
  const hadFocus = !!f.contains(document.activeElement);
  if (ta) ta.disabled = busy;
  if (send) send.disabled = busy;
  if (stop) stop.hidden = streaming.length === 0;
  f.setAttribute('aria-busy', String(busy));
  refreshActions(busy);
  refreshMessageActions(busy);
  if (refocus && !busy && ta) {
    const active = document.activeElement;
    if (hadFocus || !active || active === document.body) ta.focus();
  }
};

/** @param {HTMLTextAreaElement} ta */
export const autoGrow = (ta) => {
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight + 2, Math.round(window.innerHeight * 0.4))}px`;
};

/** Sends the message box's text, or `text` (Continue) leaving whatever is in the box. @param {string} [text] */
export const sendMessage = (text) => {
  const ta = textarea();
  if (!ta || ta.disabled) return;
  const fromBox = typeof text !== 'string';
  const content = fromBox ? ta.value : text;
  if (!content.trim()) return;
  if (noModel()) return;
  if (!settingsAllowSend(' Your message is still in the box.')) return;
  // A new turn follows the current line: an earlier version on show goes back to the current one.
  showCurrentVersions();
  // Attachments waiting in the box belong to the draft there, not to a Continue.
  sendUserMessage(content, shownChatId(), fromBox ? takeAttachments() : [], { fromBox });
  if (fromBox) ta.value = '';
  autoGrow(ta);
  scrollToBottom();
  updateComposer();
};

/**
 * Sends an edit of the user message `el` (in place: message-actions.js opens the editor): the
 * new text takes its place as a new branch (`edit_of`), with the message's files. Until the server
 * stores it, the edited message and what followed it are hidden and the new text waits at the end;
 * a refusal brings them back and opens the editor again with the text. False when nothing was sent.
 * @param {HTMLElement} el
 * @param {string} content
 */
export const sendEdit = (el, content) => {
  const chatId = shownChatId();
  const editOf = el.dataset.messageId;
  if (!content.trim() || !chatId || !editOf || busyNow()) return false;
  if (noModel()) return false;
  if (!settingsAllowSend('')) return false;
  /** @type {FileInfo[]} */
  const files = $$('[data-message-attachments] [data-attachment-id]', el).map((li) => ({
    id: li.dataset.attachmentId || '',
    name: $('.chip-name', li)?.textContent || '',
    size: Number($('[data-size]', li)?.dataset.size || 0),
  }));
  /** @type {HTMLElement[]} */
  const hidden = [];
  for (let node = /** @type {Element | null} */ (el); node; node = node.nextElementSibling) {
    if (node instanceof HTMLElement && !node.hidden) {
      node.hidden = true;
      hidden.push(node);
    }
  }
  sendUserMessage(content, chatId, files, { fromBox: false, edit: { of: el, hidden }, editOf });
  scrollToBottom();
  updateComposer();
  return true;
};

/**
 * The settings are checked before anything is sent: a wrong one is said next to its field, and
 * in the error over the box (followed by `tail`). True when nothing is wrong.
 * @param {string} tail
 */
const settingsAllowSend = (tail) => {
  clearFormError();
  const problems = checkSettings();
  if (!problems.length) return true;
  openSettings(problems[0].setting);
  showError(`Not sent: ${problems.map((x) => x.text).join(' ')}${tail}`);
  return false;
};

/**
 * Shows `content` as the user's message on its way and sends it as `user_message`, with the
 * settings changed since the last send and `files`; it waits in `pendingSends` for its ack. Files
 * taken from the box (`fromBox`) go back there if the server refuses the message.
 * @param {string} content
 * @param {string} chatId the shown chat ('' for a new one)
 * @param {FileInfo[]} files
 * @param {{ fromBox: boolean, edit?: PendingSend['edit'], editOf?: string }} how
 */
const sendUserMessage = (content, chatId, files, { fromBox, edit, editOf }) => {
  const id = newClientId();
  const el = createMessage('user', null, 'sending');
  el.dataset.clientId = id;
  stateOf(el).raw = content;
  renderMessage(el);
  if (files.length) renderChips(el, files);
  /** @type {import('./chat-dom.js').Frame} */
  const frame = { type: 'user_message', id, content };
  if (chatId) frame.chat_id = chatId;
  const extra = /** @type {Record<string, unknown>} */ (frame);
  if (editOf) extra.edit_of = editOf;
  if (files.length) extra.attachments = files.map((f) => f.id);
  const options = takeOptions();
  if (options) frame.options = options;
  /** @type {PendingSend} */
  const pending = { chatId, el, content, fromBox, options, files: fromBox ? files : [], acked: false, timer: setTimeout(() => giveUp(id), T.ackTimeoutMs) };
  if (edit) pending.edit = edit;
  pendingSends.set(id, pending);
  sendFrame(frame, true);
};

/** @param {string} id */
export const settleSend = (id) => {
  const p = pendingSends.get(id);
  if (!p) return null;
  clearTimeout(p.timer);
  pendingSends.delete(id);
  return p;
};

/**
 * A message the server refused is not left in the chat as a copy: it leaves the list, and its
 * text, files and changed settings go back where they came from, to fix and send again.
 * @param {PendingSend} p
 */
export const takeBack = (p) => {
  if (p.el.isConnected) p.el.remove();
  if (p.edit) {
    // A refused edit: the chat reads as before, and the editor holds the new text again.
    for (const h of p.edit.hidden) h.hidden = false;
    if (p.options) for (const k of Object.keys(p.options)) changed.add(k);
    if (p.edit.of.isConnected) openEditor(p.edit.of, p.content);
    return;
  }
  const v = view();
  const empty = v && $('[data-empty]', v);
  if (v && empty && !$('[data-message-id], [data-client-id]', v)) empty.hidden = false;
  const ta = textarea();
  if (ta && p.fromBox && !ta.value.trim()) {
    ta.value = p.content;
    autoGrow(ta);
  }
  if (p.files.length) {
    pendingFiles = p.files.concat(pendingFiles.filter((f) => !p.files.some((g) => g.id === f.id)));
    renderPending();
  }
  if (p.options) for (const k of Object.keys(p.options)) changed.add(k);
};

/** @param {string} id */
const giveUp = (id) => {
  const p = settleSend(id);
  if (!p) return;
  if (!p.acked && p.el.isConnected) p.el.dataset.status = 'error';
  showError('The server did not answer. Please try again.', p.el.isConnected ? p.el : null);
  updateComposer();
};

export const stopStreaming = () => {
  for (const el of streamingMessages()) sendFrame({ type: 'stop', message_id: el.dataset.messageId }, true);
};

/**
 * Without a model key the notice above the box already says so: nothing is sent (no unanswered
 * message, no second error), the text stays in the box and the notice is read out again.
 */
const noModel = () => {
  const v = view();
  const notice = v && $('[data-model-notice]', v);
  if (!notice) return false;
  notice.dataset.attention = '';
  if (!$('[data-model-notice-kept]', notice)) {
    const kept = document.createElement('span');
    kept.dataset.modelNoticeKept = '';
    kept.textContent = ' Your message was not sent; it is still in the box.';
    notice.appendChild(kept);
  }
  announce((notice.textContent || '').trim());
  return true;
};

// ---- attachments

export const renderPending = () => {
  const v = view();
  const ul = v && $('[data-attach-chips]', v);
  if (ul) ul.replaceChildren(chipList(pendingFiles, true));
};

const takeAttachments = () => {
  const files = pendingFiles;
  pendingFiles = [];
  renderPending();
  return files;
};

/** Uploads files picked with Attach, pasted into the box or dropped on it (one path for all three). @param {File[]} files */
export const uploadFiles = async (files) => {
  clearFormError();
  const problems = [];
  for (const file of files) {
    const body = new FormData();
    body.append('file', file, file.name);
    try {
      const res = await fetch(`${BASE}/api/files`, { method: 'POST', credentials: 'same-origin', body, headers: { Accept: 'application/json' } });
      if (res.status === 201 || res.ok) {
        const f = await res.json();
        pendingFiles.push({ id: f.id, name: f.name, size: f.size });
        renderPending();
      } else if (res.status === 413) problems.push(`${file.name} is too large: files can be at most 1 MB.`);
      else if (res.status === 415) problems.push(`${file.name} is not a text file: only UTF-8 text can be attached.`);
      else problems.push(`${file.name} could not be uploaded: ${await refusal(res)}`);
    } catch (_) {
      problems.push(`${file.name} could not be uploaded.`);
    }
  }
  if (problems.length) showError(problems.join(' '));
};

// Files pasted into the box or dropped on it go the way of the Attach button.
document.addEventListener('paste', (ev) => {
  const t = ev.target;
  if (!(t instanceof Element) || !t.closest('form[data-chat-form]') || !ev.clipboardData) return;
  const files = Array.from(ev.clipboardData.files || []);
  if (!files.length) return;
  ev.preventDefault();
  void uploadFiles(files);
});

/** @param {DragEvent} ev */
const dropZone = (ev) => (ev.target instanceof Element ? /** @type {HTMLElement | null} */ (ev.target.closest('[data-drop-zone]')) : null);
/** @param {DragEvent} ev */
const carriesFiles = (ev) => !!ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes('Files');
for (const type of /** @type {const} */ (['dragenter', 'dragover'])) {
  document.addEventListener(type, (ev) => {
    const zone = dropZone(ev);
    if (!zone || !ev.dataTransfer || !carriesFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    zone.dataset.dropping = '';
  });
}
document.addEventListener('dragleave', (ev) => {
  const zone = dropZone(ev);
  if (zone && !(ev.relatedTarget instanceof Node && zone.contains(ev.relatedTarget))) delete zone.dataset.dropping;
});
document.addEventListener('drop', (ev) => {
  const zone = dropZone(ev);
  if (!zone || !ev.dataTransfer) return;
  delete zone.dataset.dropping;
  const files = Array.from(ev.dataTransfer.files || []);
  if (!files.length) return;
  ev.preventDefault();
  void uploadFiles(files);
});

// ---- regenerate

/** The Regenerate button sits on the last answer only, while nothing streams. @param {boolean} [busyGiven] */
export const refreshActions = (busyGiven) => {
  const v = view();
  if (!v || document.body.hasAttribute('data-readonly')) return;
  const answers = $$('[data-message-id][data-role="assistant"]', v);
  const last = answers[answers.length - 1];
  const busy = busyGiven === undefined ? busyNow() : busyGiven;
  for (const b of $$('[data-regenerate]', v)) if (b.closest('[data-message-id]') !== last || busy) b.remove();
  if (!last || busy || last.dataset.status === 'streaming' || !last.dataset.messageId) return;
  if ($('[data-regenerate]', last)) return;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'button-small';
  b.dataset.regenerate = '';
  b.textContent = 'Regenerate';
  b.title = 'Answer this turn again';
  actionsOf(last).appendChild(b);
};

/** @param {HTMLElement} el */
const regenerate = (el) => {
  const id = newClientId();
  clearFormError();
  const v = view();
  if (v) for (const b of $$('[data-regenerate]', v)) b.remove();
  /** @type {PendingSend} */
  const placeholder = {
    el,
    content: '',
    fromBox: false,
    options: null,
    files: [],
    chatId: shownChatId(),
    acked: true,
    timer: setTimeout(() => giveUp(id), T.ackTimeoutMs),
  };
  pendingSends.set(id, placeholder);
  sendFrame({ type: 'regenerate', id, message_id: el.dataset.messageId }, true);
  updateComposer();
};

/** Clicks of the composer and its controls; true when handled. @param {Element} t */
export const composerClick = (t) => {
  if (t.closest('[data-stop]')) {
    stopStreaming();
    return true;
  }
  const remove = /** @type {HTMLElement | null} */ (t.closest('[data-attach-remove]'));
  if (remove) {
    pendingFiles = pendingFiles.filter((f) => f.id !== remove.dataset.attachRemove);
    renderPending();
    return true;
  }
  const regen = t.closest('[data-regenerate]');
  if (regen) {
    const el = /** @type {HTMLElement | null} */ (regen.closest('[data-message-id]'));
    if (el) regenerate(el);
    return true;
  }
  const suggestion = t.closest('[data-suggestion]');
  if (suggestion) {
    // The text goes in the box to be read, changed and sent; nothing is sent for the reader.
    const ta = textarea();
    if (ta && !ta.disabled) {
      ta.value = suggestion.getAttribute('data-suggestion') || '';
      autoGrow(ta);
      ta.focus();
      ta.setSelectionRange(ta.value.length, ta.value.length);
      updateComposer();
    }
    return true;
  }
  return false;
};

document.addEventListener('submit', (ev) => {
  const t = ev.target;
  if (t instanceof Element && t.matches('form[data-chat-form]')) {
    ev.preventDefault();
    sendMessage();
  }
});

document.addEventListener('input', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLTextAreaElement && t.name === 'content' && t.closest('form[data-chat-form]')) autoGrow(t);
});

document.addEventListener('change', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLInputElement && t.matches('[data-attach-input]')) {
    const files = Array.from(t.files || []);
    t.value = '';
    void uploadFiles(files);
  }
});
