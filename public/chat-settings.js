// @ts-check
/**
 * A chat's settings: the model picker and Thinking in the box, temperature, max tokens and the
 * system prompt in the settings popover. Each field is checked as it is typed and again before a
 * send, and says what is wrong in words under it. The choices live for the page (the composer is
 * swapped with each chat); only what the reader changed since the last send goes out as `options`,
 * so a chat's stored settings are not overwritten.
 */
import { $, $$, BASE, cssEscape, getJson, view } from './chat-dom.js';
import { renderPending } from './chat-composer.js';

/** @typedef {'model' | 'temperature' | 'max_tokens' | 'system_prompt'} TextSetting */

const prefs = { model: '', thinking: true, temperature: '', max_tokens: '', system_prompt: '' };
/** Settings changed since the last send. @type {Set<string>} */
export const changed = new Set();
/** @type {string[] | null} */
let modelList = null;
let defaultModel = '';

/** The models of /api/models, into the picker. */
export const loadModels = async () => {
  try {
    const res = await getJson(`${BASE}/api/models`);
    if (!res.ok) return;
    const body = await res.json();
    defaultModel = body.default || '';
    modelList = /** @type {string[]} */ (
      (body.models || []).map((/** @type {{ id?: unknown }} */ m) => m.id).filter((/** @type {unknown} */ id) => typeof id === 'string')
    );
    if (defaultModel && !modelList.includes(defaultModel)) modelList.unshift(defaultModel);
    const v = view();
    if (v) fillModels(v);
  } catch (_) {
    /* the picker keeps the default */
  }
};

/** @param {ParentNode} root */
const fillModels = (root) => {
  const select = /** @type {HTMLSelectElement | null} */ ($('[data-model-picker]', root));
  if (!select || !modelList) return;
  select.replaceChildren();
  for (const id of modelList) {
    const o = document.createElement('option');
    o.value = id;
    o.textContent = id === defaultModel ? `${id} (default)` : id;
    select.appendChild(o);
  }
  select.value = prefs.model || defaultModel;
};

/** A stored chat's own settings win over the choices carried from the previous chat. @param {HTMLElement} root */
const adoptChatSettings = (root) => {
  const section = root.matches('[data-chat-settings]') ? root : $('[data-chat-settings]', root);
  /** @type {Record<string, unknown> | null} */
  let stored = null;
  try {
    stored = section && section.dataset.chatSettings ? JSON.parse(section.dataset.chatSettings) : null;
  } catch (_) {
    stored = null;
  }
  if (!stored || typeof stored !== 'object') return;
  for (const key of /** @type {TextSetting[]} */ (['model', 'temperature', 'max_tokens', 'system_prompt'])) {
    prefs[key] = stored[key] === undefined || stored[key] === null ? '' : String(stored[key]);
  }
  prefs.thinking = stored.thinking !== false;
  changed.clear();
};

/** A new chat view: its settings into the controls. @param {HTMLElement} root */
export const hydrateSettings = (root) => {
  adoptChatSettings(root);
  fillModels(root);
  const think = /** @type {HTMLInputElement | null} */ ($('[data-thinking]', root));
  if (think) think.checked = prefs.thinking;
  for (const input of settingInputs(root)) input.value = prefs[/** @type {TextSetting} */ (input.dataset.setting)] || '';
  renderPending();
};

/** @param {ParentNode} root */
const settingInputs = (root) => /** @type {(HTMLInputElement | HTMLTextAreaElement)[]} */ ($$('[data-setting]', root));

/** @param {HTMLInputElement | HTMLTextAreaElement} input */
const onSettingInput = (input) => {
  const key = /** @type {TextSetting} */ (input.dataset.setting);
  prefs[key] = input.value;
  changed.add(key);
  // Said as it is typed, next to the field; a fixed field clears its message.
  showSettingProblem(key, settingProblem(input));
};

/**
 * What is wrong with one settings field, in words, or '' (empty means the server default).
 * @param {HTMLInputElement | HTMLTextAreaElement} input
 */
const settingProblem = (input) => {
  const key = input.dataset.setting;
  const raw = input.value.trim();
  const bad = input.validity && input.validity.badInput;
  if (key === 'temperature') {
    if (bad) return 'Temperature must be a number, like 0.7.';
    if (raw === '') return '';
    const n = Number(raw);
    if (!Number.isFinite(n)) return 'Temperature must be a number, like 0.7.';
    if (n < 0 || n > 2) return `Temperature must be from 0 to 2 (${raw} is ${n < 0 ? 'below' : 'above'} that).`;
    return '';
  }
  if (key === 'max_tokens') {
    const most = Number(input.getAttribute('max')) || 0;
    if (bad) return 'Max tokens must be a whole number, like 1000.';
    if (raw === '') return '';
    const n = Number(raw);
    if (!Number.isInteger(n)) return 'Max tokens must be a whole number, like 1000.';
    if (n < 1) return 'Max tokens must be at least 1.';
    if (most && n > most) return `Max tokens can be at most ${most.toLocaleString('en')}.`;
    return '';
  }
  if (key === 'system_prompt') {
    const most = Number(input.getAttribute('maxlength')) || 0;
    if (most && input.value.length > most) return `The system prompt can be at most ${most.toLocaleString('en')} characters.`;
  }
  return '';
};

/** Shows (or clears) the words under a settings field, and marks the field invalid for assistive tech. @param {string} key @param {string} text */
const showSettingProblem = (key, text) => {
  const v = view();
  if (!v) return;
  const slot = $(`[data-setting-error="${cssEscape(key)}"]`, v);
  const input = $(`[data-setting="${cssEscape(key)}"]`, v);
  if (slot) slot.textContent = text || '';
  if (input) {
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
};

/**
 * Every changed settings field's problem, checked before a send. A field the reader did not change
 * is not sent (the chat keeps its stored setting), so it never stops a send: a chat stored with more
 * max tokens than today's MAX_TOKENS_LIMIT is answered with the limit (the server caps it).
 * @returns {{ setting: string, text: string }[]}
 */
export const checkSettings = () => {
  const v = view();
  if (!v) return [];
  const found = [];
  for (const input of settingInputs(v)) {
    const key = input.dataset.setting || '';
    const text = changed.has(key) ? settingProblem(input) : '';
    showSettingProblem(key, text);
    if (text) found.push({ setting: key, text });
  }
  return found;
};

/**
 * Opens the settings popover on its field `key` (with `text` under it, for a server's refusal);
 * the model and Thinking are in the box itself and get the focus there.
 * @param {string | undefined} key
 * @param {string} [text]
 */
export const openSettings = (key, text) => {
  const v = view();
  if (!v) return;
  if (key === 'model' || key === 'thinking') {
    const control = $(key === 'model' ? '[data-model-picker]' : '[data-thinking]', v);
    if (control) control.focus();
    return;
  }
  setSettingsOpen(true, false);
  if (key && text) showSettingProblem(key, text);
  const input = key ? $(`[data-setting="${cssEscape(key)}"]`, v) : null;
  if (input) input.focus();
};

/** @param {boolean} open @param {boolean} [focusFirst] */
const setSettingsOpen = (open, focusFirst = true) => {
  const v = view();
  const panel = v && $('[data-settings-panel]', v);
  const toggle = v && $('[data-settings-toggle]', v);
  if (!panel) return;
  panel.hidden = !open;
  if (toggle) toggle.setAttribute('aria-expanded', String(open));
  if (open && focusFirst) {
    const first = $('[data-setting]', panel);
    if (first) first.focus();
  }
};

const closeSettingsToButton = () => {
  setSettingsOpen(false);
  const v = view();
  const back = v && $('[data-settings-toggle]', v);
  if (back) back.focus();
};

/** The changed settings as `options` (empty fields reset to the default with null), or null. */
export const takeOptions = () => {
  if (!changed.size) return null;
  /** @type {Record<string, unknown>} */
  const o = {};
  for (const k of changed) {
    if (k === 'model') o.model = prefs.model || null;
    else if (k === 'thinking') o.thinking = prefs.thinking;
    else if (k === 'temperature') o.temperature = prefs.temperature === '' ? null : Number(prefs.temperature);
    else if (k === 'max_tokens') o.max_tokens = prefs.max_tokens === '' ? null : Math.round(Number(prefs.max_tokens));
    else if (k === 'system_prompt') o.system_prompt = prefs.system_prompt.trim() ? prefs.system_prompt : null;
  }
  changed.clear();
  return o;
};

/** Clicks of the settings button, Done, and anywhere else (which closes the popover); true when handled. @param {Element} t */
export const settingsClick = (t) => {
  const toggle = t.closest('[data-settings-toggle]');
  if (toggle) {
    setSettingsOpen(toggle.getAttribute('aria-expanded') !== 'true');
    return true;
  }
  if (t.closest('[data-settings-close]')) {
    closeSettingsToButton();
    return true;
  }
  // A click elsewhere closes the popover; what was typed stays.
  const v = view();
  const panel = v && $('[data-settings-panel]:not([hidden])', v);
  if (panel && !panel.contains(t)) setSettingsOpen(false);
  return false;
};

/** Esc inside the popover closes it, focus back on its button; true when handled. @param {Element} t */
export const settingsEscape = (t) => {
  if (!t.closest('[data-settings-panel]')) return false;
  closeSettingsToButton();
  return true;
};

document.addEventListener('input', (ev) => {
  const t = ev.target;
  if ((t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement) && t.matches('[data-setting]')) onSettingInput(t);
});

document.addEventListener('change', (ev) => {
  const t = ev.target;
  if (t instanceof HTMLSelectElement && t.matches('[data-model-picker]')) {
    prefs.model = t.value;
    changed.add('model');
  } else if (t instanceof HTMLInputElement && t.matches('[data-thinking]')) {
    prefs.thinking = t.checked;
    changed.add('thinking');
  } else if ((t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement) && t.matches('[data-setting]')) onSettingInput(t);
});
