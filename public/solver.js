// @ts-check
/**
 * The Solver page's script: one WebSocket (same protocol as the chat, docs/protocol.md "Solver frames"),
 * the issue form, progress by stage, thinking folded, the solution, the patch with diff colouring and
 * a copy button. Errors in words (errors.js, shared with the chat page), the raw code folded away.
 * A native ES module (`type="module"`), no build step, no inline code (the page has a strict CSP).
 */
import './drawer.js';
import { describeError, fillError } from './errors.js';

/**
 * The frames of docs/protocol.md this page reads, by type ("Solver frames", and `error`).
 * @typedef {{ type: string, id?: string, run_id?: string }} FrameBase
 * @typedef {{
 *   connected: FrameBase,
 *   solver_started: FrameBase & { run_id: string, issue_url: string },
 *   solver_progress: FrameBase & { stage: string, progress: number, message?: string },
 *   solver_reasoning: FrameBase & { seq: number, content: string },
 *   solver_solution: FrameBase & { seq: number, content: string },
 *   solver_complete: SolverComplete,
 *   error: FrameBase & import('./errors.js').ErrorLike,
 * }} SolverFrames
 * @typedef {FrameBase & {
 *   run_id: string, status: string, summary?: string, files?: string[], patch?: string, applies?: boolean,
 *   pr_url?: string, pr_error?: string
 * }} SolverComplete
 */

(() => {
  'use strict';

  const root = document.documentElement;
  const BASE = root.dataset.basePath || '';
  const STAGES = ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete'];
  /** An element views/solver.hbs always renders (a cast below names its kind). @param {string} sel */
  const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

  const form = /** @type {HTMLFormElement} */ ($('[data-solver-form]'));
  const input = /** @type {HTMLInputElement} */ ($('[data-issue-url]'));
  const openPr = /** @type {HTMLInputElement} */ ($('[data-open-pr]'));
  const solveBtn = /** @type {HTMLButtonElement} */ ($('[data-solve]'));
  const stopBtn = /** @type {HTMLButtonElement} */ ($('[data-solver-stop]'));
  const errorBox = $('[data-solver-error]');
  const runEl = $('[data-solver-run]');
  const bar = /** @type {HTMLProgressElement} */ ($('[data-progress-bar]'));
  const progressMsg = $('[data-progress-message]');
  const badge = $('[data-run-badge]');
  const reasoning = /** @type {HTMLDetailsElement} */ ($('[data-solver-reasoning]'));
  const reasoningText = $('[data-reasoning-text]');
  const solutionBlock = $('[data-solution-block]');
  const solution = $('[data-solution]');
  const result = $('[data-result]');
  const applies = $('[data-applies]');
  const prLine = $('[data-pr]');
  const filesBlock = $('[data-files-block]');
  const filesList = $('[data-files]');
  const patchBlock = $('[data-patch-block]');
  const patchCode = $('[data-patch]');
  const copyBtn = $('[data-copy-patch]');
  /** @type {HTMLElement | null} */
  const runList = document.querySelector('[data-run-list]');
  /** @type {HTMLElement | null} */
  const announcer = document.querySelector('[data-announcer]');

  /**
   * The run this page shows live: the `solve`'s id, then its run_id.
   * @type {{ requestId: string | null, runId: string | null, openPr: boolean, seq: number, reasoning: string, solution: string, running: boolean }}
   */
  const live = { requestId: null, runId: null, openPr: false, seq: 0, reasoning: '', solution: '', running: false };
  let counter = 0;

  /** @param {string} text */
  const announce = (text) => {
    if (announcer) announcer.textContent = text;
  };

  // ---------------------------------------------------------------- Rendering

  /** @param {string} text @returns {string | null} */
  const markdown = (text) => {
    const w = window;
    if (w.marked && w.DOMPurify) {
      try {
        return w.DOMPurify.sanitize(w.marked.parse(text, { gfm: true, breaks: false }));
      } catch (_) {
        /* plain text below */
      }
    }
    return null;
  };

  /**
   * Summary (or the streamed solution) as sanitized Markdown, plain text when the libraries are missing.
   * @param {string} text
   * @param {boolean} final
   */
  const renderSolution = (text, final) => {
    solutionBlock.hidden = !text;
    const html = final ? markdown(text) : null;
    if (html === null) {
      solution.textContent = text;
      solution.dataset.md = 'raw';
    } else {
      solution.innerHTML = html;
      solution.dataset.md = 'rendered';
    }
  };

  /** The patch, coloured by highlight.js's `diff` language (it escapes the text itself). @param {string} patch */
  const renderPatch = (patch) => {
    patchBlock.hidden = !patch;
    patchCode.textContent = patch || '';
    patchCode.className = 'language-diff';
    if (!patch) return;
    const hljs = window.hljs;
    if (hljs && hljs.getLanguage && hljs.getLanguage('diff')) {
      patchCode.innerHTML = hljs.highlight(patch, { language: 'diff', ignoreIllegals: true }).value;
      patchCode.classList.add('hljs');
      patchCode.dataset.highlighted = 'yes';
    }
  };

  /** @param {string} status */
  const setStatus = (status) => {
    runEl.dataset.status = status;
    badge.dataset.status = status;
    badge.textContent = status === 'idle' ? '' : status;
  };

  /** @param {string} stage @param {number | undefined} progress @param {string} [message] */
  const setProgress = (stage, progress, message) => {
    const value = Math.max(Number(runEl.dataset.progress || 0), Number(progress) || 0);
    runEl.dataset.progress = String(value);
    runEl.dataset.currentStage = stage;
    bar.value = value;
    bar.textContent = `${value} %`;
    if (typeof message === 'string') progressMsg.textContent = message;
    const at = STAGES.indexOf(stage);
    for (const li of /** @type {NodeListOf<HTMLElement>} */ (runEl.querySelectorAll('[data-stage]'))) {
      const i = STAGES.indexOf(li.dataset.stage || '');
      li.dataset.state = stage === 'complete' || i < at ? 'done' : i === at ? 'active' : 'pending';
    }
  };

  /** Marks the stage reached as where the run ended (stopped or failed). @param {string} state */
  const endStages = (state) => {
    /** @type {HTMLElement | null} */
    const active = runEl.querySelector('[data-stage][data-state="active"]');
    if (active) active.dataset.state = state;
  };

  /**
   * A sentence, with the raw code and the server's words folded in "Details" when there are any.
   * @param {string} text
   * @param {string} [detail]
   */
  const showError = (text, detail) => {
    if (text) fillError(errorBox, text, detail);
    else errorBox.textContent = '';
    errorBox.hidden = !text;
  };

  /** @param {boolean} running */
  const setRunning = (running) => {
    live.running = running;
    input.disabled = running;
    openPr.disabled = running;
    solveBtn.disabled = running;
    stopBtn.hidden = !running;
    stopBtn.disabled = !live.runId;
  };

  /** A fresh run panel for a new `solve`. @param {string} issueUrl @param {boolean} withPr */
  const resetRun = (issueUrl, withPr) => {
    runEl.hidden = false;
    runEl.dataset.runId = '';
    runEl.dataset.progress = '0';
    runEl.dataset.openPr = withPr ? 'true' : 'false';
    setStatus('running');
    const link = /** @type {HTMLAnchorElement} */ ($('[data-run-issue]'));
    const m = /^https:\/\/github\.com\/([^/]+\/[^/]+)\/issues\/(\d+)/.exec(issueUrl);
    link.href = issueUrl;
    link.textContent = m ? `${m[1]}#${m[2]}` : issueUrl;
    $('[data-run-title]').textContent = '';
    for (const li of /** @type {NodeListOf<HTMLElement>} */ (runEl.querySelectorAll('[data-stage]'))) {
      li.dataset.state = 'pending';
      if (li.dataset.stage === 'pr') li.hidden = !withPr;
    }
    bar.value = 0;
    progressMsg.textContent = 'Starting…';
    reasoning.hidden = true;
    reasoning.open = false;
    reasoningText.textContent = '';
    renderSolution('', false);
    result.hidden = true;
    renderPatch('');
    live.seq = 0;
    live.reasoning = '';
    live.solution = '';
  };

  /** @param {SolverComplete} frame */
  const showResult = (frame) => {
    result.hidden = false;
    applies.dataset.applies = String(!!frame.applies);
    applies.textContent = frame.applies ? 'The patch applies cleanly to the default branch.' : 'The patch does not apply as written.';
    prLine.textContent = '';
    if (frame.pr_url) {
      prLine.append('Pull request: ');
      const a = document.createElement('a');
      a.href = frame.pr_url;
      a.textContent = frame.pr_url;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      a.dataset.prUrl = '';
      prLine.append(a);
    } else if (frame.pr_error) {
      prLine.textContent = `No pull request: ${frame.pr_error}`;
    }
    prLine.hidden = !prLine.textContent;
    filesList.textContent = '';
    for (const path of frame.files || []) {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = path;
      li.append(code);
      filesList.append(li);
    }
    filesBlock.hidden = !(frame.files && frame.files.length);
  };

  /** @param {string} runId @param {string} issueUrl */
  const addRunToList = (runId, issueUrl) => {
    if (!runList || runList.querySelector(`[data-run-item="${runId}"]`)) return;
    for (const a of runList.querySelectorAll('a[aria-current]')) a.removeAttribute('aria-current');
    const m = /^https:\/\/github\.com\/([^/]+\/[^/]+)\/issues\/(\d+)/.exec(issueUrl);
    const li = document.createElement('li');
    li.className = 'chat-item';
    li.dataset.runItem = runId;
    const a = document.createElement('a');
    a.className = 'chat-link';
    a.href = `${BASE}/solver/${runId}`;
    a.setAttribute('aria-current', 'page');
    const dot = document.createElement('span');
    dot.className = 'run-status-dot';
    dot.dataset.status = 'running';
    dot.setAttribute('aria-hidden', 'true');
    a.append(dot, m ? `${m[1]}#${m[2]}` : issueUrl);
    li.append(a);
    runList.prepend(li);
  };

  /** @param {string} runId @param {string} status */
  const setListStatus = (runId, status) => {
    /** @type {HTMLElement | null} */
    const dot = runList && runList.querySelector(`[data-run-item="${runId}"] .run-status-dot`);
    if (dot) dot.dataset.status = status;
  };

  // ---------------------------------------------------------------- Frames

  /** @param {FrameBase} frame */
  const mine = (frame) => (live.requestId !== null && frame.id === live.requestId) || (live.runId !== null && frame.run_id === live.runId);

  /** @type {{ [T in keyof SolverFrames]: (f: SolverFrames[T]) => void }} */
  const handlers = {
    connected() {
      socket.onConnected();
      // A run this page follows went on without us: catch up from the last piece we have.
      if (live.running && live.runId) send({ type: 'solver_watch', run_id: live.runId, after_seq: live.seq });
    },
    solver_started(f) {
      if (!mine(f)) return;
      // A catch-up (solver_watch) starts with solver_started too: keep what is already shown.
      if (live.runId === f.run_id && live.seq > 0) return;
      resetRun(f.issue_url, live.openPr);
      live.runId = f.run_id;
      runEl.dataset.runId = f.run_id;
      stopBtn.disabled = false;
      addRunToList(f.run_id, f.issue_url);
      const path = `${BASE}/solver/${f.run_id}`;
      if (location.pathname !== path) history.pushState({ run: f.run_id }, '', path);
      announce('The Solver started.');
    },
    solver_progress(f) {
      if (!mine(f)) return;
      setProgress(f.stage, f.progress, f.message);
    },
    solver_reasoning(f) {
      if (!mine(f) || f.seq <= live.seq) return;
      live.seq = f.seq;
      live.reasoning += f.content;
      reasoning.hidden = false;
      reasoning.classList.add('thinking');
      reasoningText.textContent = live.reasoning;
    },
    solver_solution(f) {
      if (!mine(f) || f.seq <= live.seq) return;
      live.seq = f.seq;
      live.solution += f.content;
      reasoning.classList.remove('thinking');
      renderSolution(live.solution, false);
    },
    solver_complete(f) {
      if (!mine(f)) return;
      setStatus(f.status);
      if (f.status === 'stopped') {
        endStages('stopped');
        progressMsg.textContent = 'Stopped: the patch so far is kept.';
      } else {
        setProgress('complete', 100);
      }
      renderSolution(f.summary || live.solution, true);
      showResult(f);
      renderPatch(f.patch || '');
      setListStatus(f.run_id, f.status);
      finish();
      announce(f.status === 'stopped' ? 'The Solver run was stopped.' : 'The Solver run is complete.');
    },
    error(f) {
      // An error of our run (it carries run_id), or the direct answer to our solve (invalid URL…).
      if (!mine(f) && !(f.id && f.id === live.requestId)) return;
      const problem = describeError(f);
      showError(problem.text, problem.detail);
      if (live.runId && f.run_id === live.runId) {
        setStatus('error');
        endStages('failed');
        setListStatus(f.run_id, 'error');
      } else if (f.code === 'not_found' && f.run_id) {
        return; // a stop of a run that is gone; nothing else changes
      }
      finish();
    },
  };

  const finish = () => {
    reasoning.classList.remove('thinking');
    live.requestId = null;
    setRunning(false);
  };

  // ---------------------------------------------------------------- Socket

  /** The page's one WebSocket (public/page.js): reconnects, watchdog, connection indicator. */
  const socket = window.PageSocket.create({
    onFrame: (/** @type {FrameBase} */ frame) => {
      const handler = handlers[/** @type {keyof SolverFrames} */ (frame.type)];
      if (handler) handler(/** @type {any} */ (frame));
    },
    busy: () => live.running,
    onClose: () => {
      // The run goes on on the server; once connected again the page catches up (solver_watch).
      if (live.running && live.runId) progressMsg.textContent = 'Connection lost: the run goes on, reconnecting…';
    },
  });
  /** @param {object} frame */
  const send = (frame) => socket.send(frame);

  // ---------------------------------------------------------------- Controls

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (live.running) return;
    const issueUrl = input.value.trim();
    showError('');
    if (!issueUrl) {
      showError('Paste the URL of a GitHub issue, like https://github.com/OWNER/REPO/issues/123.');
      input.focus();
      return;
    }
    counter += 1;
    const id = `solve-${Date.now().toString(36)}-${counter}`;
    /** @type {{ type: 'solve', id: string, issue_url: string, open_pr?: boolean }} */
    const frame = { type: 'solve', id, issue_url: issueUrl };
    if (openPr.checked) frame.open_pr = true;
    live.requestId = id;
    live.runId = null;
    if (!send(frame)) {
      live.requestId = null;
      showError('Not connected to the server; try again in a moment.');
      return;
    }
    live.openPr = openPr.checked;
    setRunning(true);
  });

  stopBtn.addEventListener('click', () => {
    if (!live.runId) return;
    send({ type: 'stop', id: `stop-${live.runId}`, run_id: live.runId });
    stopBtn.disabled = true;
  });

  copyBtn.addEventListener('click', async () => {
    const text = patchCode.textContent || '';
    if (!text) return;
    await window.copyFromButton(copyBtn, text, 'Copy patch');
  });

  // Back/forward between runs: the server renders each stored run, so load the address.
  window.addEventListener('popstate', () => location.reload());

  // ---------------------------------------------------------------- Start

  // A stored run rendered by the server: its error in words, its patch coloured, its summary rendered.
  if (errorBox.dataset.errorCode) {
    const problem = describeError({ code: errorBox.dataset.errorCode, message: errorBox.textContent.trim() });
    showError(problem.text, problem.detail);
  }
  if (patchCode.textContent) renderPatch(patchCode.textContent);
  if (solution.textContent) renderSolution(solution.textContent, true);
  // One still running (a reload, another tab, a link): follow it live from the start.
  if (runEl.dataset.status === 'running' && runEl.dataset.runId) {
    live.runId = runEl.dataset.runId;
    live.openPr = runEl.dataset.openPr === 'true';
    setRunning(true);
  }
  socket.connect();
})();
