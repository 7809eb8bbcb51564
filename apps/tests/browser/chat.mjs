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
import { launch, withTimeout } from "./cdp.mjs";

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) throw new Error("usage: node chat.mjs BASE_URL ARTIFACT_DIR");
const { send, openPage, evaluate, until, navigate, screenshot, submitSignIn, typeAndSend, finish } =
  launch(artifacts);
const go = (page, path) => navigate(page, base + path);

async function signIn(page, user, password) {
  await go(page, "/login.html");
  await submitSignIn(page, user, password);
  await until(page, "document.documentElement.dataset.ready === 'true'", "the chat page");
  await until(page, "document.querySelector('#connection').textContent === 'live'", "the live stream");
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
  await finish();
} catch (e) {
  await finish(e);
}
