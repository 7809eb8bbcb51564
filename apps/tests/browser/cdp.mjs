// The DevTools protocol over a pipe to headless Chromium (`--remote-debugging-pipe`: no
// WebSocket library needed), shared by the browser tests (`chat.mjs`, `peer.mjs`).
//
// `launch(artifacts)` starts Chromium and returns the helpers: pages with cookie jars of their
// own, evaluation, polling until the page says it is ready (never a sleep), navigation,
// screenshots into `artifacts`, and `finish(error)`, which reports a failure with each page's
// state and console and closes Chromium.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const TIMEOUT = 20_000;

export function withTimeout(promise, what, ms = TIMEOUT) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), ms);
    }),
  ]);
}

export function launch(artifacts) {
  mkdirSync(artifacts, { recursive: true });
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

  async function navigate(page, url) {
    await send("Page.navigate", { url }, page.sessionId);
  }

  async function screenshot(page, file) {
    const { data } = await send("Page.captureScreenshot", { format: "png" }, page.sessionId);
    writeFileSync(join(artifacts, file), Buffer.from(data, "base64"));
  }

  // Fills a page's `#signin` form and submits it.
  async function submitSignIn(page, user, password) {
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
  }

  // Types `text` into the page's composer as a person would, then Enter.
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

  // Reports `e` (if any) with every page's state, closes Chromium and removes its profile.
  async function finish(e) {
    if (e) {
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
    }
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

  return { send, openPage, evaluate, until, navigate, screenshot, submitSignIn, typeAndSend, finish, pages };
}
