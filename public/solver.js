/*
 * The Solver page's script: one WebSocket (same protocol as the chat, docs/protocol.md "Solver frames"),
 * the issue form, progress by stage, thinking folded, the solution, the patch with diff colouring and
 * a copy button. Errors in words (errors.js, shared with the chat page), the raw code folded away.
 * A native ES module (`type="module"`), no build step, no inline code (the page has a strict CSP).
 */
import './drawer.js';
import { describeError, fillError } from './errors.js';

(() => {
  'use strict';

  const root = document.documentElement;
  const BASE = root.dataset.basePath || '';
  const STAGES = ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete'];
  const $ = (sel, el) => (el || document).querySelector(sel);

  const form = $('[data-solver-form]');
  const input = $('[data-issue-url]');
  const openPr = $('[data-open-pr]');
  const solveBtn = $('[data-solve]');
  const stopBtn = $('[data-solver-stop]');
  const errorBox = $('[data-solver-error]');
  const runEl = $('[data-solver-run]');
  const bar = $('[data-progress-bar]');
  const progressMsg = $('[data-progress-message]');
  const badge = $('[data-run-badge]');
  const reasoning = $('[data-solver-reasoning]');
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
  const runList = $('[data-run-list]');
  const announcer = $('[data-announcer]');

  /** The run this page shows live: the `solve`'s id, then its run_id. */
  const live = { requestId: null, runId: null, openPr: false, seq: 0, reasoning: '', solution: '', running: false };
  let counter = 0;

  const announce = (text) => {
    if (announcer) announcer.textContent = text;
  };

  // ---------------------------------------------------------------- Rendering

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

  /** Summary (or the streamed solution) as sanitized Markdown, plain text when the libraries are missing. */
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

  /** The patch, coloured by highlight.js's `diff` language (it escapes the text itself). */
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

  const setStatus = (status) => {
    runEl.dataset.status = status;
    badge.dataset.status = status;
    badge.textContent = status === 'idle' ? '' : status;
  };

  const setProgress = (stage, progress, message) => {
    const value = Math.max(Number(runEl.dataset.progress || 0), Number(progress) || 0);
    runEl.dataset.progress = String(value);
    runEl.dataset.currentStage = stage;
    bar.value = value;
    bar.textContent = `${value} %`;
    if (typeof message === 'string') progressMsg.textContent = message;
    const at = STAGES.indexOf(stage);
    for (const li of runEl.querySelectorAll('[data-stage]')) {
      const i = STAGES.indexOf(li.dataset.stage);
      li.dataset.state = stage === 'complete' || i < at ? 'done' : i === at ? 'active' : 'pending';
    }
  };

  /** Marks the stage reached as where the run ended (stopped or failed). */
  const endStages = (state) => {
    const active = runEl.querySelector('[data-stage][data-state="active"]');
    if (active) active.dataset.state = state;
  };

  /** A sentence, with the raw code and the server's words folded in "Details" when there are any. */
  const showError = (text, detail) => {
    if (text) fillError(errorBox, text, detail);
    else errorBox.textContent = '';
    errorBox.hidden = !text;
  };

  const setRunning = (running) => {
    live.running = running;
    input.disabled = running;
    openPr.disabled = running;
    solveBtn.disabled = running;
    stopBtn.hidden = !running;
    stopBtn.disabled = !live.runId;
  };

  /** A fresh run panel for a new `solve`. */
  const resetRun = (issueUrl, withPr) => {
    runEl.hidden = false;
    runEl.dataset.runId = '';
    runEl.dataset.progress = '0';
    runEl.dataset.openPr = withPr ? 'true' : 'false';
    setStatus('running');
    const link = $('[data-run-issue]');
    const m = /^https:\/\/github\.com\/([^/]+\/[^/]+)\/issues\/(\d+)/.exec(issueUrl);
    link.href = issueUrl;
    link.textContent = m ? `${m[1]}#${m[2]}` : issueUrl;
    $('[data-run-title]').textContent = '';
    for (const li of runEl.querySelectorAll('[data-stage]')) {
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

  const setListStatus = (runId, status) => {
    const dot = runList && runList.querySelector(`[data-run-item="${runId}"] .run-status-dot`);
    if (dot) dot.dataset.status = status;
  };

  // ---------------------------------------------------------------- Frames

  const mine = (frame) =>
    (live.requestId !== null && frame.id === live.requestId) || (live.runId !== null && frame.run_id === live.runId);

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
    onFrame: (frame) => {
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    },
    busy: () => live.running,
    onClose: () => {
      // The run goes on on the server; once connected again the page catches up (solver_watch).
      if (live.running && live.runId) progressMsg.textContent = 'Connection lost: the run goes on, reconnecting…';
    },
  });
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
