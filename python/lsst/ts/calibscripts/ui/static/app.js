/*
 * The queue page: follows the queue through /api/events (server-sent events)
 * and commands it through /api/queue/*; the CONFIG editor is checked by
 * /api/config/validate, which applies the script's own validation.
 *
 * Plain DOM, no framework and no build step. Every text from the server is
 * set with textContent, never parsed as HTML: script logs are arbitrary text.
 */
"use strict";

/** TAI - UTC (s), constant since 2017: SAL timestamps are TAI. */
const TAI_MINUS_UTC = 37;
/** Pause in typing before the configuration is checked (ms). */
const VALIDATE_DELAY_MS = 250;
/** Log messages kept per script in the page (the server keeps as many). */
const MAX_LOG_MESSAGES = 5000;

const STATE_CLASS = {
  ENABLED: "state-ok",
  DISABLED: "state-warn",
  STANDBY: "state-warn",
  FAULT: "state-bad",
  OFFLINE: "state-bad",
  CONFIGURED: "state-active",
  RUNNING: "state-active",
  PAUSED: "state-warn",
  ENDING: "state-warn",
  STOPPING: "state-warn",
  FAILING: "state-bad",
  DONE: "state-ok",
  STOPPED: "state-warn",
  FAILED: "state-bad",
  CONFIGURE_FAILED: "state-bad",
  LOADFAILED: "state-bad",
  TERMINATED: "state-bad",
};
/** Process states that say more than the script state. */
const PROCESS_STATES_SHOWN = new Set(["LOADING", "LOADFAILED", "CONFIGURE_FAILED", "TERMINATED"]);
const FAILED_STATES = new Set(["FAILED", "CONFIGURE_FAILED", "LOADFAILED", "TERMINATED"]);

/** Everything the page knows; rendered by the render* functions. */
const page = {
  queue: null, // the queue (QueueBridge.queue_json)
  available: null, // {standard: [...], external: [...]}
  scripts: new Map(), // salIndex -> script (ScriptView.to_json)
  logs: new Map(), // salIndex -> log messages, oldest first
  results: new Map(), // salIndex -> a calibration script's results and report (ReportService)
  logsLoaded: new Set(), // salIndex whose kept log has been fetched
  clockOffset: 0, // server TAI - local clock (s)
  chosen: null, // {path, isStandard}: the script under CONFIGURE
  drafts: new Map(), // "standard|path" -> config text typed so far
  suggestedOptions: {}, // option -> value pre-filled in an empty CONFIG (the simulator's repo)
  validation: null, // the last check of the editor's text
  validatedText: null, // the text it checked
  validationSeq: 0,
  validationTimer: 0,
  logSource: 0, // salIndex whose log is shown (the queue's own index for its log)
  followCurrent: true, // show the current script's log as scripts start
  updateProgress: () => {},
};

const $ = (id) => document.getElementById(id);

/**
 * Create an element.
 * @param {string} tag
 * @param {{className?: string, text?: string, title?: string, attrs?: object, onClick?: Function}} options
 * @param {...(Node|string|null)} children
 */
function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  if (options.title) node.title = options.title;
  for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, value);
  if (options.onClick) node.addEventListener("click", options.onClick);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// --- server ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(`cannot reach the page's server (${error.message})`, 0, {});
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(data.error || `${response.status} ${response.statusText}`, response.status, data);
  }
  return data;
}

const getJson = (url) => api("GET", url);
const postJson = (url, body = {}) => api("POST", url, body);

/** Send a command; show why it failed. Returns the answer, or null on failure. */
async function command(what, url, body) {
  try {
    return await postJson(url, body);
  } catch (error) {
    showNotice(`${what}: ${error.message}`);
    return null;
  }
}

function connect() {
  const events = new EventSource("/api/events");
  const on = (kind, handler) => events.addEventListener(kind, (event) => handler(JSON.parse(event.data)));
  events.onopen = () => setConnection(true);
  // The browser reconnects by itself, and the server starts again with a snapshot.
  events.onerror = () => setConnection(false);
  on("snapshot", onSnapshot);
  on("queue", onQueue);
  on("script", onScript);
  on("log", onLog);
  on("available", onAvailable);
  on("results", onResults);
}

function setConnection(live) {
  const node = $("connection");
  node.textContent = live ? "live" : "reconnecting…";
  node.className = `connection ${live ? "live" : "down"}`;
}

function onSnapshot(snapshot) {
  page.clockOffset = snapshot.serverTai - Date.now() / 1000;
  page.suggestedOptions = snapshot.suggestedOptions || {};
  page.queue = snapshot.queue;
  page.scripts = new Map(snapshot.scripts.map((script) => [script.salIndex, script]));
  page.results = new Map((snapshot.results || []).map((results) => [results.salIndex, results]));
  page.logsLoaded.clear();
  onAvailable(snapshot.available);
  if (snapshot.available === null) {
    // The queue has not said yet: ask it (the answer also comes as an event).
    getJson("/api/available-scripts").catch((error) => showNotice(`Available scripts: ${error.message}`));
  }
  renderHeader();
  renderQueue();
  followCurrent();
  if (page.logSource) loadLog(page.logSource);
  renderLog();
}

function onQueue(queue) {
  page.queue = queue;
  renderHeader();
  renderQueue();
  followCurrent();
  updateAddButton();
}

function onScript(script) {
  page.scripts.set(script.salIndex, script);
  renderQueue();
}

function onResults(results) {
  page.results.set(results.salIndex, results);
  renderQueue();
}

function onAvailable(available) {
  page.available = available;
  renderAvailable();
}

function onLog(message) {
  const messages = page.logs.get(message.salIndex) || [];
  messages.push(message);
  if (messages.length > MAX_LOG_MESSAGES) messages.splice(0, messages.length - MAX_LOG_MESSAGES);
  page.logs.set(message.salIndex, messages);
  if (message.salIndex === page.logSource && shownLevel(message)) appendLogEntry(message);
}

// --- notices --------------------------------------------------------------------

let noticeTimer = 0;

function showNotice(text, kind = "bad") {
  $("notice-text").textContent = text;
  $("notice").className = `notice ${kind}`;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  if (kind === "ok") noticeTimer = setTimeout(() => ($("notice").hidden = true), 6000);
}

// --- formatting -----------------------------------------------------------------

const nowTai = () => Date.now() / 1000 + page.clockOffset;

/** HH:MM:SS (UTC) of a TAI timestamp. */
function utcTime(tai) {
  return new Date((tai - TAI_MINUS_UTC) * 1000).toISOString().slice(11, 19);
}

function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** A value as YAML flow text: [a, b], {level: INFO}, "quoted" only when needed. */
function flowYaml(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(flowYaml).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${k}: ${flowYaml(v)}`).join(", ")}}`;
  }
  if (typeof value === "string") {
    const plain =
      /^[A-Za-z_/][\w ./:+@-]*$/.test(value) &&
      !/: | #/.test(value) &&
      !/^(true|false|null|yes|no|on|off|~)$/i.test(value) &&
      value === value.trim();
    return plain ? value : JSON.stringify(value);
  }
  return String(value);
}

/** The state that best says where a script is. */
function displayState(script) {
  if (PROCESS_STATES_SHOWN.has(script.processState)) return script.processState;
  return script.scriptState !== "UNKNOWN" ? script.scriptState : script.processState;
}

function badge(text) {
  return el("span", { className: `badge ${STATE_CLASS[text] || ""}`, text });
}

function scriptOf(salIndex) {
  return page.scripts.get(salIndex) || {
    salIndex,
    path: "",
    processState: "UNKNOWN",
    scriptState: "UNKNOWN",
    timestampRunStart: 0,
    timestampProcessEnd: 0,
    duration: 0,
    reason: "",
  };
}

// --- header ---------------------------------------------------------------------

function renderHeader() {
  const queue = page.queue;
  $("queue-name").textContent = queue.name;
  document.title = `${queue.name} · ScriptQueue`;
  const summary = $("summary-state");
  summary.textContent = queue.summaryState;
  summary.className = `badge ${STATE_CLASS[queue.summaryState] || ""}`;
  const running = $("queue-running");
  running.textContent = queue.running ? "QUEUE RUNNING" : "QUEUE PAUSED";
  running.className = `badge ${queue.running ? "state-ok" : "state-warn"}`;
  $("heartbeat").hidden = queue.alive;
  const button = $("pause-resume");
  button.textContent = queue.running ? "Pause queue" : "Resume queue";
  button.disabled = !canCommand();
}

function canCommand() {
  return Boolean(page.queue && page.queue.alive && page.queue.summaryState === "ENABLED");
}

async function pauseOrResume() {
  const resume = !page.queue.running;
  await command(resume ? "Resume" : "Pause", `/api/queue/${resume ? "resume" : "pause"}`);
}

// --- available scripts ------------------------------------------------------------

function renderAvailable() {
  const list = $("available-list");
  list.replaceChildren();
  if (page.available === null) {
    list.append(el("p", { className: "hint", text: "Asking the queue…" }));
    return;
  }
  const words = $("script-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const matches = (path) => words.every((word) => path.toLowerCase().includes(word));
  let shown = 0;
  for (const [label, paths, isStandard] of [
    ["Standard", page.available.standard, true],
    ["External", page.available.external, false],
  ]) {
    const selected = paths.filter(matches);
    if (selected.length === 0) continue;
    shown += selected.length;
    list.append(el("h3", { text: `${label} (${selected.length})` }));
    for (const path of selected) {
      const chosen = page.chosen && page.chosen.path === path && page.chosen.isStandard === isStandard;
      list.append(
        el(
          "button",
          {
            className: `script-item${chosen ? " selected" : ""}`,
            title: `Configure ${path}`,
            attrs: { type: "button", "data-path": path, "data-standard": String(isStandard) },
            onClick: () => chooseScript(path, isStandard),
          },
          el("span", { className: "launch", text: "▶" }),
          el("span", { text: path }),
        ),
      );
    }
  }
  if (shown === 0) list.append(el("p", { className: "hint", text: "No script matches the filter." }));
}

// --- configure: schema, live-checked config, add ---------------------------------------

const draftKey = (chosen) => `${chosen.isStandard}|${chosen.path}`;

async function chooseScript(path, isStandard) {
  const chosen = { path, isStandard };
  page.chosen = chosen;
  page.validation = null;
  page.validatedText = null;
  renderAvailable();
  $("configure-empty").hidden = true;
  $("configure-body").hidden = false;
  $("configure-path").textContent = isStandard ? path : `${path} (external)`;
  $("schema-view").textContent = "Asking the queue for the schema…";
  $("config-editor").value = page.drafts.get(draftKey(chosen)) || "";
  $("config-hint").hidden = true;
  setAddStatus("", "");
  showCheck({ valid: false, problems: [], options: [] });
  setConfigStatus("", "");
  let answer;
  try {
    const query = `path=${encodeURIComponent(path)}&isStandard=${isStandard}`;
    answer = await getJson(`/api/schema?${query}`);
  } catch (error) {
    if (page.chosen !== chosen) return;
    $("schema-view").textContent = "";
    setConfigStatus(`cannot read the schema: ${error.message}`, "invalid");
    return;
  }
  if (page.chosen !== chosen) return; // another script was chosen meanwhile
  $("schema-view").textContent = answer.takesConfig ? answer.schema : "This script takes no configuration.";
  if (!page.drafts.has(draftKey(chosen))) suggestOptions(answer.options);
  validateNow();
}

/** Fill an untouched CONFIG with the options this server suggests (the simulator's repository). */
function suggestOptions(schemaOptions) {
  const suggested = Object.entries(page.suggestedOptions).filter(([option]) => schemaOptions.includes(option));
  if (suggested.length === 0) return;
  $("config-editor").value = suggested.map(([option, value]) => `${option}: ${flowYaml(value)}\n`).join("");
  const names = suggested.map(([option]) => option).join(", ");
  $("config-hint").textContent = `${names} filled in for the simulated observatory this page runs with.`;
  $("config-hint").hidden = false;
  renderEditorLines();
}

function onEditorInput() {
  page.drafts.set(draftKey(page.chosen), $("config-editor").value);
  renderEditorLines();
  updateAddButton();
  setConfigStatus("checking…", "");
  clearTimeout(page.validationTimer);
  page.validationTimer = setTimeout(validateNow, VALIDATE_DELAY_MS);
}

async function validateNow() {
  clearTimeout(page.validationTimer);
  const chosen = page.chosen;
  const text = $("config-editor").value;
  const seq = ++page.validationSeq;
  let check;
  try {
    check = await postJson("/api/config/validate", { path: chosen.path, isStandard: chosen.isStandard, config: text });
  } catch (error) {
    if (seq === page.validationSeq) setConfigStatus(`cannot check: ${error.message}`, "invalid");
    return;
  }
  if (seq !== page.validationSeq) return; // a newer check is under way
  page.validation = check;
  page.validatedText = text;
  showCheck(check);
}

function showCheck(check) {
  const count = check.problems.length;
  if (page.validatedText !== null) {
    setConfigStatus(
      check.valid ? "✓ valid" : `✗ ${count} problem${count === 1 ? "" : "s"}`,
      check.valid ? "valid" : "invalid",
    );
  }
  renderProblems(check.problems);
  renderEffective(check.options);
  renderEditorLines();
  updateAddButton();
}

function setConfigStatus(text, kind) {
  const node = $("config-status");
  node.textContent = text;
  node.className = `config-status ${kind}`;
}

/** Lines with problems, and what they are. */
function problemLines() {
  const lines = new Map();
  for (const problem of page.validation ? page.validation.problems : []) {
    if (problem.line === null) continue;
    lines.set(problem.line, [...(lines.get(problem.line) || []), problem.message]);
  }
  return lines;
}

/** Line numbers and the marks under lines with problems. */
function renderEditorLines() {
  const text = $("config-editor").value;
  const lines = text.split("\n");
  const marked = problemLines();
  const gutter = $("config-gutter");
  const backdrop = $("config-backdrop");
  gutter.replaceChildren();
  backdrop.replaceChildren();
  lines.forEach((line, i) => {
    const messages = marked.get(i + 1);
    const className = messages ? "error" : "";
    gutter.append(el("div", { className, text: String(i + 1), title: messages ? messages.join("\n") : "" }));
    backdrop.append(el("div", { className, text: line || " " }));
  });
  syncEditorScroll();
}

function syncEditorScroll() {
  const editor = $("config-editor");
  $("config-gutter").scrollTop = editor.scrollTop;
  $("config-backdrop").scrollTop = editor.scrollTop;
  $("config-backdrop").scrollLeft = editor.scrollLeft;
}

function renderProblems(problems) {
  const list = $("config-problems");
  list.replaceChildren();
  for (const problem of problems) {
    const where = [problem.line !== null ? `line ${problem.line}` : "", problem.option].filter(Boolean).join(" · ");
    // The location is shown apart; the message starts with it too.
    const message = problem.message.replace(/^line \d+(, column \d+)?: /, "");
    const item = el(
      "li",
      { attrs: { "data-line": String(problem.line ?? ""), "data-option": problem.option }, title: "Go to the line" },
      where ? el("span", { className: "where", text: where }) : null,
      message,
    );
    if (problem.line !== null) item.addEventListener("click", () => goToLine(problem.line));
    list.append(item);
  }
}

function goToLine(line) {
  const editor = $("config-editor");
  const lines = editor.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
  editor.focus();
  editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
  const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 18;
  editor.scrollTop = Math.max(0, (line - 2) * lineHeight);
}

function renderEffective(options) {
  const table = $("effective-table");
  table.replaceChildren();
  $("effective").hidden = options.length === 0;
  for (const option of options) {
    table.append(
      el(
        "tr",
        { className: option.source, attrs: { "data-option": option.option } },
        el("td", { text: option.option }),
        el("td", { text: flowYaml(option.value) }),
      ),
    );
  }
}

function updateAddButton() {
  const ready =
    page.chosen !== null &&
    page.validation !== null &&
    page.validation.valid &&
    page.validatedText === $("config-editor").value;
  $("add-button").disabled = !(ready && canCommand());
}

function setAddStatus(text, kind) {
  const node = $("add-status");
  node.textContent = text;
  node.className = `add-status ${kind}`;
}

async function addScript() {
  if ($("add-button").disabled) return;
  const chosen = page.chosen;
  const body = {
    path: chosen.path,
    isStandard: chosen.isStandard,
    config: $("config-editor").value,
    descr: $("add-descr").value,
    logLevel: Number($("add-log-level").value),
    pauseCheckpoint: $("add-pause").value,
    stopCheckpoint: $("add-stop").value,
    location: "LAST",
  };
  $("add-button").disabled = true;
  setAddStatus("Adding: the queue loads and configures the script…", "");
  try {
    const answer = await postJson("/api/queue/add", body);
    setAddStatus(`Added ${chosen.path} as script ${answer.salIndex}.`, "ok");
  } catch (error) {
    if (error.data && error.data.problems) {
      page.validation = error.data;
      page.validatedText = body.config;
      showCheck(error.data);
    }
    setAddStatus(`Not added: ${error.message}`, "bad");
  } finally {
    updateAddButton();
  }
}

// --- queue: current, waiting, finished ---------------------------------------------------

function renderQueue() {
  if (!page.queue) return;
  renderCurrent();
  const { waiting, past } = page.queue;
  $("waiting-count").textContent = `(${waiting.length})`;
  $("finished-count").textContent = `(${past.length})`;
  renderList($("waiting-list"), waiting, waitingItem, "No script waiting.");
  renderList($("finished-list"), past, finishedItem, "No script has finished yet.");
}

function renderList(list, indices, makeItem, emptyText) {
  list.replaceChildren();
  if (indices.length === 0) list.append(el("li", { className: "empty-item", text: emptyText }));
  indices.forEach((salIndex, position) => list.append(makeItem(scriptOf(salIndex), position)));
}

function titleRow(script) {
  return el(
    "div",
    { className: "script-title" },
    el("span", { className: "index", text: `#${script.salIndex}` }),
    el("span", { className: "path", text: script.path || "…" }),
    badge(displayState(script)),
  );
}

/** A button that runs an action without selecting the script under it. */
function actionButton(text, action, options = {}) {
  const button = el("button", { className: options.className || "", text, title: options.title || "" });
  button.type = "button";
  button.disabled = !canCommand();
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    action();
  });
  return button;
}

function scriptItem(script, ...content) {
  const item = el("li", { attrs: { "data-sal-index": String(script.salIndex) } }, titleRow(script), ...content);
  if (script.salIndex === page.logSource) item.classList.add("viewing");
  item.title = "Show its log";
  item.addEventListener("click", () => setLogSource(script.salIndex, false));
  return item;
}

function waitingItem(script, position) {
  const waiting = page.queue.waiting;
  const actions = el(
    "div",
    { className: "actions" },
    actionButton("↑", () => moveScript(script.salIndex, "BEFORE", waiting[position - 1]), { title: "Run earlier" }),
    actionButton("↓", () => moveScript(script.salIndex, "AFTER", waiting[position + 1]), { title: "Run later" }),
    actionButton("Remove", () => stopScripts([script.salIndex], false), { title: "Take it out of the queue" }),
  );
  actions.children[0].disabled ||= position === 0;
  actions.children[1].disabled ||= position === waiting.length - 1;
  return scriptItem(script, actions);
}

function finishedItem(script) {
  const ran = script.timestampRunStart && script.timestampProcessEnd;
  return scriptItem(
    script,
    ran
      ? el("div", {
          className: "script-detail",
          text: `ran ${formatSeconds(script.timestampProcessEnd - script.timestampRunStart)}, ended ${utcTime(
            script.timestampProcessEnd,
          )} UTC`,
        })
      : null,
    FAILED_STATES.has(displayState(script)) && script.reason ? el("div", { className: "reason", text: script.reason }) : null,
    el("div", { className: "actions" }, actionButton("Requeue", () => requeue(script.salIndex)), reportLink(script.salIndex)),
  );
}

/** The link to a calibration script's report (null for a script whose log named no collection). */
function reportLink(salIndex) {
  const results = page.results.get(salIndex);
  if (!results || results.collections.length === 0) return null;
  const report = results.report;
  const label = {
    ready: "Report",
    making: "Report (making…)",
    waiting: "Report (waiting…)",
    failed: "Report (failed)",
    none: "Report",
  }[report.state] || "Report";
  const link = el("a", {
    className: `report-link report-${report.state}`,
    text: label,
    title: report.state === "failed" ? report.error : report.progress || "Open the results report",
    attrs: { href: report.url, target: "_blank", rel: "noopener", "data-sal-index": String(salIndex) },
  });
  link.addEventListener("click", (event) => event.stopPropagation());
  return link;
}

/** The running script's verification results, each as soon as its verification job has finished. */
function verificationResults(salIndex) {
  const results = page.results.get(salIndex);
  if (!results || results.verifications.length === 0) return null;
  const rows = results.verifications.map((v) => {
    if (v.error) {
      return el("tr", { className: "fail", attrs: { "data-image-type": v.imageType } },
        el("td", { text: v.imageType }), el("td", { text: `could not be read: ${v.error}`, attrs: { colspan: "4" } }));
    }
    const failedTests = Object.entries(v.failedTests).map(([test, count]) => `${test} ${count}`).join(", ");
    return el(
      "tr",
      { className: v.accepted ? (v.allPassed ? "pass" : "warn") : "fail", attrs: { "data-image-type": v.imageType } },
      el("td", { text: v.imageType }),
      el("td", { text: String(v.exposures) }),
      el("td", { text: `${v.withFailures}${failedTests ? ` (failed tests: ${failedTests})` : ""}` }),
      el("td", { text: `${v.failedExposures.length} (limit ${v.maxFailedExposures})` }),
      el("td", { text: v.verdict }),
    );
  });
  const head = el(
    "tr",
    {},
    ...["Type", "Exposures", "With failed tests", "Failed the rule", "Verdict"].map((text) => el("th", { text })),
  );
  return el(
    "div",
    { className: "verification-results" },
    el("div", { className: "script-detail", text: "Verification results" }),
    el("table", { attrs: { id: "verification-results" } }, el("thead", {}, head), el("tbody", {}, ...rows)),
  );
}

function renderCurrent() {
  const box = $("current-script");
  box.replaceChildren();
  const salIndex = page.queue.currentSalIndex;
  page.updateProgress = () => {};
  if (!salIndex) {
    box.className = "current empty";
    box.onclick = null;
    box.append(el("div", { text: "No script running." }));
    if (!page.queue.running) {
      const last = page.queue.past.length ? scriptOf(page.queue.past[0]) : null;
      const failed = last && FAILED_STATES.has(displayState(last));
      box.append(
        el("div", {
          className: failed ? "reason" : "script-detail",
          text: failed
            ? `The queue paused when script ${last.salIndex} ended ${displayState(last)}: ${last.reason || "no reason given"}. Resume the queue to go on.`
            : "The queue is paused: resume it to run the waiting scripts.",
        }),
      );
    }
    return;
  }
  const script = scriptOf(salIndex);
  box.className = `current${salIndex === page.logSource ? " viewing" : ""}`;
  box.title = "Show its log";
  box.onclick = () => setLogSource(salIndex, true);
  const detail = el("div", { className: "script-detail" });
  if (script.description) detail.append(el("b", { text: script.classname }), ` — ${script.description}`);
  const checkpoints = el("div", { className: "script-detail" });
  const passed = script.totalCheckpoints
    ? `${script.numCheckpoints} of ${script.totalCheckpoints}`
    : `${script.numCheckpoints} passed`;
  checkpoints.append("Last checkpoint: ", el("b", { text: script.lastCheckpoint || "none yet" }), ` (${passed})`);
  const bar = el("div");
  const progress = el("div", { className: "progress" }, bar);
  const progressText = el("div", { className: "progress-text" });
  page.updateProgress = () => showProgress(scriptOf(salIndex), progress, bar, progressText);
  page.updateProgress();
  box.append(
    titleRow(script),
    detail,
    checkpoints,
    progress,
    progressText,
    verificationResults(salIndex),
    el(
      "div",
      { className: "actions" },
      actionButton("Stop", () => stopCurrent(script, false), { title: "Ask the script to stop: it cleans up" }),
      actionButton("Terminate", () => stopCurrent(script, true), {
        className: "danger",
        title: "End the script at once, without its cleanup",
      }),
      actionButton("Requeue", () => requeue(salIndex), { title: "Add a copy at the end of the queue" }),
    ),
  );
}

/** Progress from the script's metadata duration and the time it has been running. */
function showProgress(script, progress, bar, text) {
  if (!script.timestampRunStart) {
    bar.style.width = "0%";
    text.textContent = "Starting…";
    return;
  }
  const end = script.timestampProcessEnd || nowTai();
  const elapsed = Math.max(0, end - script.timestampRunStart);
  const state = displayState(script);
  progress.className = `progress${state === "DONE" ? " done" : FAILED_STATES.has(state) ? " failed" : ""}`;
  if (script.duration > 0) {
    const fraction = state === "DONE" ? 1 : Math.min(1, elapsed / script.duration);
    bar.style.width = `${(100 * fraction).toFixed(1)}%`;
    const over = elapsed > script.duration && !script.timestampProcessEnd ? " (longer than estimated)" : "";
    text.textContent = `${formatSeconds(elapsed)} of about ${formatSeconds(script.duration)}${over}`;
  } else {
    bar.style.width = "0%";
    text.textContent = `${formatSeconds(elapsed)} (the script gave no duration estimate)`;
  }
}

async function stopCurrent(script, terminate) {
  const how = terminate
    ? "Terminate it now, without its cleanup?"
    : "It will clean up and end STOPPED.";
  if (!window.confirm(`Stop script ${script.salIndex} (${script.path})? ${how}`)) return;
  await stopScripts([script.salIndex], terminate);
}

async function stopScripts(salIndices, terminate) {
  await command("Stop", "/api/queue/stop", { salIndices, terminate });
}

async function requeue(salIndex) {
  const answer = await command("Requeue", "/api/queue/requeue", { salIndex, location: "LAST" });
  if (answer) showNotice(`Script ${salIndex} requeued as script ${answer.salIndex}.`, "ok");
}

async function moveScript(salIndex, location, locationSalIndex) {
  await command("Move", "/api/queue/move", { salIndex, location, locationSalIndex });
}

// --- log ---------------------------------------------------------------------------

/** Show the log of the current script from now on, as scripts start. */
function followCurrent() {
  if (!page.followCurrent || !page.queue) return;
  const salIndex = page.queue.currentSalIndex || page.logSource || page.queue.past[0] || 0;
  if (salIndex && salIndex !== page.logSource) setLogSource(salIndex, true);
}

function setLogSource(salIndex, follow) {
  page.followCurrent = follow;
  if (salIndex === page.logSource) {
    renderLogHeader();
    return;
  }
  page.logSource = salIndex;
  renderLog();
  renderQueue();
  loadLog(salIndex);
}

async function loadLog(salIndex) {
  if (page.logsLoaded.has(salIndex)) return;
  let answer;
  try {
    answer = await getJson(`/api/logs/${salIndex}`);
  } catch (error) {
    showNotice(`Log of ${salIndex}: ${error.message}`);
    return;
  }
  page.logsLoaded.add(salIndex);
  // Messages may also have come live meanwhile: merge by sequence number.
  const bySeq = new Map((page.logs.get(salIndex) || []).map((message) => [message.seq, message]));
  for (const message of answer.messages) bySeq.set(message.seq, message);
  const merged = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-MAX_LOG_MESSAGES);
  page.logs.set(salIndex, merged);
  if (salIndex === page.logSource) renderLog();
}

function shownLevel(message) {
  return message.level >= Number($("log-level-filter").value);
}

function renderLogHeader() {
  const isQueue = page.queue && page.logSource === page.queue.salIndex;
  const script = scriptOf(page.logSource);
  $("log-source").textContent = !page.logSource
    ? ""
    : isQueue
      ? `${page.queue.name} (the queue itself)`
      : `script ${page.logSource}${script.path ? ` · ${script.path}` : ""}`;
  $("log-follow").hidden = page.followCurrent;
}

function renderLog() {
  renderLogHeader();
  const view = $("log-view");
  view.replaceChildren();
  const messages = (page.logs.get(page.logSource) || []).filter(shownLevel);
  if (messages.length === 0) {
    const text = page.logSource ? "No log messages yet." : "The log of the running script shows here.";
    view.append(el("div", { className: "log-empty", text }));
  }
  for (const message of messages) view.append(logEntry(message));
  view.scrollTop = view.scrollHeight;
}

function appendLogEntry(message) {
  const view = $("log-view");
  // Keep following the end only if the reader is there (not reading back).
  const atEnd = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
  const empty = view.querySelector(".log-empty");
  if (empty) empty.remove();
  view.append(logEntry(message));
  while (view.childElementCount > MAX_LOG_MESSAGES) view.firstElementChild.remove();
  if (atEnd) view.scrollTop = view.scrollHeight;
}

function logEntry(message) {
  const level = message.level >= 40 ? "error" : message.level >= 30 ? "warning" : message.level >= 20 ? "info" : "debug";
  const entry = el(
    "div",
    { className: `log-entry ${level}`, attrs: { "data-seq": String(message.seq) } },
    el("span", { className: "time", text: utcTime(message.timestamp), title: `${message.name}, UTC` }),
    el("span", { className: "level", text: message.levelName }),
    // Multi-line messages (verification reports) keep their lines and indentation.
    el("pre", { className: "message", text: message.message }),
  );
  if (message.traceback) {
    entry.append(el("details", {}, el("summary", { text: "Traceback" }), el("pre", { text: message.traceback })));
  }
  return entry;
}

// --- start ------------------------------------------------------------------------------

function start() {
  $("script-filter").addEventListener("input", renderAvailable);
  $("pause-resume").addEventListener("click", pauseOrResume);
  $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
  const editor = $("config-editor");
  editor.addEventListener("input", onEditorInput);
  editor.addEventListener("scroll", syncEditorScroll);
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      addScript();
    }
  });
  $("add-button").addEventListener("click", addScript);
  $("log-level-filter").addEventListener("change", renderLog);
  $("log-queue").addEventListener("click", () => page.queue && setLogSource(page.queue.salIndex, false));
  $("log-follow").addEventListener("click", () => {
    page.followCurrent = true;
    followCurrent();
    renderLogHeader();
  });
  renderAvailable();
  renderEditorLines();
  renderLog();
  setInterval(() => page.updateProgress(), 500);
  connect();
}

start();
