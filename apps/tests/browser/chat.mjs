// The chat in a real browser: headless Chromium, driven over the DevTools protocol on a pipe
// (`--remote-debugging-pipe`: no WebSocket library needed). Run by `apps/tests/browser.rs`:
//
//     node chat.mjs BASE_URL ARTIFACT_DIR
//
// Two isolated browser sessions (their own cookie jars) sign in through the proxy; A posts
// and B sees it without a reload, waiting on the page's own `chat:message` event; a message
// that is HTML shows as text; a reload shows the history; signing out makes `/` a 401 again.
// Screenshots land in ARTIFACT_DIR. Prints one JSON line with what it measured; any failure
// throws (exit 1) with the step that failed.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) throw new Error("usage: node chat.mjs BASE_URL ARTIFACT_DIR");
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 20_000;

const profile = mkdtempSync(join(tmpdir(), "weaprous-chromium-"));
const browser = spawn(
  "chromium",
  [
    "--headless=new",
    "--no-sandbox", // CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    `--user-data-dir=${profile}`,
    "--remote-debugging-pipe",
    "about:blank",
  ],
  { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
);
let browserLog = "";
browser.stderr.on("data", (d) => (browserLog += d));

// ----- the protocol: JSON messages ended by NUL, on fd 3 (to the browser) and fd 4 -----

let nextId = 1;
const pages = [];
const waiting = new Map();
const listeners = [];
let inbox = "";
browser.stdio[4].on("data", (chunk) => {
  inbox += chunk.toString("utf8");
  let end;
  while ((end = inbox.indexOf("\0")) >= 0) {
    const msg = JSON.parse(inbox.slice(0, end));
    inbox = inbox.slice(end + 1);
    if (msg.id && waiting.has(msg.id)) {
      const { resolve, reject, method } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
      else resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});

function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  browser.stdio[3].write(JSON.stringify(msg) + "\0");
  return withTimeout(
    new Promise((resolve, reject) => waiting.set(id, { resolve, reject, method })),
    `${method} answered`,
  );
}

function withTimeout(promise, what, ms = TIMEOUT) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), ms);
    }),
  ]);
}

// A page in a browser context of its own (its own cookies).
async function openPage(name) {
  const { browserContextId } = await send("Target.createBrowserContext");
  const { targetId } = await send("Target.createTarget", { url: "about:blank", browserContextId });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const page = { name, sessionId, dialogs: [], console: [] };
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === "Page.javascriptDialogOpening") {
      page.dialogs.push(msg.params.message);
      send("Page.handleJavaScriptDialog", { accept: true }, sessionId);
    } else if (msg.method === "Runtime.exceptionThrown") {
      page.console.push(`exception: ${JSON.stringify(msg.params.exceptionDetails)}`);
    } else if (msg.method === "Runtime.consoleAPICalled") {
      page.console.push(`${msg.params.type}: ${msg.params.args.map((a) => a.value ?? a.description).join(" ")}`);
    } else if (msg.method === "Log.entryAdded") {
      page.console.push(`log: ${msg.params.entry.level} ${msg.params.entry.text} ${msg.params.entry.url || ""}`);
    }
  });
  pages.push(page);
  await send("Page.enable", {}, sessionId);
  await send("Runtime.enable", {}, sessionId);
  await send("Log.enable", {}, sessionId);
  return page;
}

async function evaluate(page, expression) {
  const r = await send(
    "Runtime.evaluate",
    { expression, awaitPromise: true, returnByValue: true },
    page.sessionId,
  );
  if (r.exceptionDetails) {
    throw new Error(`${page.name}: ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
  }
  return r.result.value;
}

// Polls `expression` until it is truthy (the page decides when it is ready, not a sleep).
async function until(page, expression, what) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    try {
      const v = await evaluate(page, expression);
      if (v) return v;
    } catch (_) {
      // The page is between documents (a navigation): ask again.
    }
    if (Date.now() > deadline) throw new Error(`${page.name}: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function go(page, path) {
  await send("Page.navigate", { url: base + path }, page.sessionId);
}

async function screenshot(page, file) {
  const { data } = await send("Page.captureScreenshot", { format: "png" }, page.sessionId);
  writeFileSync(join(artifacts, file), Buffer.from(data, "base64"));
}

async function signIn(page, user, password) {
  await go(page, "/login.html");
  await until(page, "document.querySelector('#signin') !== null", "the sign-in form");
  await evaluate(
    page,
    `(() => {
      const f = document.querySelector('#signin');
      f.elements.username.value = ${JSON.stringify(user)};
      f.elements.password.value = ${JSON.stringify(password)};
      f.requestSubmit();
      return true;
    })()`,
  );
  await until(page, "document.documentElement.dataset.ready === 'true'", "the chat page");
  await until(page, "document.querySelector('#connection').textContent === 'live'", "the live stream");
}

async function typeAndSend(page, text) {
  await evaluate(page, "document.querySelector('#composer textarea').focus(), true");
  await send("Input.insertText", { text }, page.sessionId);
  for (const type of ["keyDown", "keyUp"]) {
    await send(
      "Input.dispatchKeyEvent",
      { type, key: "Enter", code: "Enter", windowsVirtualKeyCode: 13, text: type === "keyDown" ? "\r" : undefined },
      page.sessionId,
    );
  }
}

// B's page resolves when a message with `text` reaches it (by the stream, no reload).
function armWait(page, text) {
  return evaluate(
    page,
    `(window.__arrived = new Promise((resolve) => {
      document.addEventListener('chat:message', (e) => {
        if (e.detail.text === ${JSON.stringify(text)}) resolve(true);
      });
    }), true)`,
  );
}

const messageTexts = (page) =>
  evaluate(page, "[...document.querySelectorAll('#messages li:not(.pending) .text')].map((e) => e.textContent)");

try {
  // A new data directory answers 503 until its default account exists.
  await withTimeout(
    (async () => {
      while ((await fetch(base + "/me")).status === 503) await new Promise((r) => setTimeout(r, 50));
    })(),
    "the chat server to be ready",
  );
  const a = await openPage("A");
  const b = await openPage("B");

  // B makes an account of its own from the sign-in page.
  await go(b, "/login.html");
  await until(b, "document.querySelector('#register') !== null", "the registration form");
  await evaluate(
    b,
    `(() => {
      const f = document.querySelector('#register');
      f.elements.username.value = 'bea';
      f.elements.password.value = 'bea-password';
      f.requestSubmit();
      return true;
    })()`,
  );
  await until(b, "location.search.includes('registered')", "the account to be made");

  await signIn(a, "admin", "password");
  await signIn(b, "bea", "bea-password");
  await until(a, "document.querySelector('#online').textContent.includes('bea')", "presence of bea on A");

  // A posts; B sees it live.
  const hello = `hello from A ${Date.now()}`;
  await armWait(b, hello);
  const t0 = performance.now();
  await typeAndSend(a, hello);
  await withTimeout(evaluate(b, "window.__arrived"), "B to see A's message");
  const latencyMs = performance.now() - t0;
  await screenshot(b, "b-live.png");

  // HTML written by a person is text.
  const html = "<img src=x onerror=alert(1)>";
  await armWait(b, html);
  await typeAndSend(a, html);
  await withTimeout(evaluate(b, "window.__arrived"), "B to see the HTML message");
  const imgs = await evaluate(b, "document.querySelectorAll('#messages img').length");
  if (imgs !== 0) throw new Error(`the message became markup: ${imgs} <img> in the list`);
  const shown = await messageTexts(b);
  if (!shown.includes(html)) throw new Error(`the HTML message is not shown as text: ${JSON.stringify(shown)}`);
  if (a.dialogs.length || b.dialogs.length) throw new Error(`a dialog opened: ${a.dialogs} ${b.dialogs}`);
  await screenshot(a, "a-sent.png");

  // A reload shows the history.
  await send("Page.reload", {}, b.sessionId);
  await until(b, "document.documentElement.dataset.ready === 'true'", "B after the reload");
  const after = await messageTexts(b);
  for (const t of [hello, html]) {
    if (!after.includes(t)) throw new Error(`history after a reload lacks ${JSON.stringify(t)}: ${JSON.stringify(after)}`);
  }
  await screenshot(b, "b-reloaded.png");

  // B changes its password in the dialog: its own session stays, the old password opens nothing.
  await evaluate(b, "document.querySelector('#change-password').click(), true");
  await until(b, "document.querySelector('#password-dialog').open", "the password dialog");
  await evaluate(b, `(() => {
    const f = document.querySelector('#password-form');
    f.elements.current.value = 'bea-password';
    f.elements.password.value = 'bea-new-password';
    f.requestSubmit();
    return true;
  })()`);
  await until(b, "document.querySelector('#notice').textContent.includes('Password changed')", "the password-changed notice");
  await screenshot(b, "b-password-changed.png");
  const kept = await evaluate(b, "fetch('me').then((r) => r.status)");
  if (kept !== 200) throw new Error(`the session that changed the password answered ${kept}`);
  const old = await evaluate(b, `fetch('login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: 'bea', password: 'bea-password' }) }).then((r) => r.status)`);
  if (old !== 401) throw new Error(`the old password answered ${old}`);

  // Signing out: back to the sign-in page, and `/` is a 401 again.
  await evaluate(a, "document.querySelector('#logout').click(), true");
  await until(a, "location.pathname.endsWith('/login.html')", "the sign-in page after sign-out");
  const status = await evaluate(a, "fetch('/', { headers: { Accept: 'text/html' } }).then((r) => r.status)");
  if (status !== 401) throw new Error(`/ after sign-out answered ${status}`);
  await screenshot(a, "a-signed-out.png");

  console.log(JSON.stringify({ ok: true, latency_ms: Math.round(latencyMs * 10) / 10 }));
} catch (e) {
  console.error(`browser test failed: ${e.message}`);
  for (const p of pages) {
    try {
      const state = await evaluate(p, "JSON.stringify({ href: location.href, readyState: document.readyState, ready: document.documentElement.dataset.ready, status: document.querySelector('#connection')?.textContent })");
      console.error(`page ${p.name}: ${state}`);
      await screenshot(p, `failed-${p.name}.png`);
    } catch (_) {}
    for (const line of p.console) console.error(`page ${p.name} said: ${line}`);
  }
  const noise = /dbus|Fontconfig|gpu_init|viz_main/;
  const said = browserLog.split("\n").filter((l) => l && !noise.test(l));
  if (said.length) console.error(`chromium said:\n${said.slice(-40).join("\n")}`);
  process.exitCode = 1;
} finally {
  // The profile goes once Chromium has exited (it writes there until then).
  const exited = new Promise((r) => (browser.exitCode !== null ? r() : browser.once("exit", r)));
  try {
    await withTimeout(send("Browser.close"), "Browser.close", 5000);
    await withTimeout(exited, "Chromium to exit", 5000);
  } catch (_) {
    browser.kill("SIGKILL");
    await withTimeout(exited, "Chromium to be killed", 5000).catch(() => {});
  }
  try {
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  } catch (e) {
    console.error(`could not remove ${profile}: ${e.message}`);
  }
  setTimeout(() => process.exit(), 100).unref();
}
