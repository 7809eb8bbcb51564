// Peer-to-peer messaging in a real browser: two peer nodes' own UIs (each on its own origin,
// each signed in with its node's account) exchange a direct message and a broadcast, seen
// live. Run by `apps/tests/browser.rs`:
//
//     node peer.mjs ARTIFACT_DIR URL_A USER_A PASSWORD_A URL_B USER_B PASSWORD_B
//
// Prints one JSON line with what it measured; any failure throws (exit 1) with the step that
// failed. Screenshots land in ARTIFACT_DIR.
import { launch, withTimeout } from "./cdp.mjs";

const [artifacts, urlA, userA, pwA, urlB, userB, pwB] = process.argv.slice(2);
if (!pwB) throw new Error("usage: node peer.mjs ARTIFACTS URL_A USER_A PW_A URL_B USER_B PW_B");
const { openPage, evaluate, until, navigate, screenshot, submitSignIn, typeAndSend, finish } =
  launch(artifacts);

async function signIn(page, url, user, password) {
  await navigate(page, url + "/login.html");
  await submitSignIn(page, user, password);
  await until(page, "document.documentElement.dataset.ready === 'true'", "the peer page");
  await until(page, "document.querySelector('#connection').textContent === 'live'", "the live stream");
}

// The button of peer `name` in a page's list, clicked.
const openPeer = (page, name) =>
  until(
    page,
    `(() => {
      const b = [...document.querySelectorAll('#peers button')].find((b) => b.textContent.startsWith(${JSON.stringify(name)}));
      if (b) b.click();
      return !!b;
    })()`,
    `${name} in the peer list`,
  );

// Resolves in `page` when a message with `text` reaches it by the live stream.
const armWait = (page, text) =>
  evaluate(
    page,
    `(window.__arrived = new Promise((resolve) => {
      document.addEventListener('peer:message', (e) => {
        if (e.detail.text === ${JSON.stringify(text)}) resolve(true);
      });
    }), true)`,
  );

const shownTexts = (page) =>
  evaluate(page, "[...document.querySelectorAll('#messages .text')].map((e) => e.textContent)");

try {
  const a = await openPage("A");
  const b = await openPage("B");
  await signIn(a, urlA, userA, pwA);
  await signIn(b, urlB, userB, pwB);

  // A writes to B directly; B's page gets it live, with an unread marker on A's name.
  await openPeer(a, userB);
  const direct = `hello ${userB}, this is ${userA} (${Date.now()})`;
  await armWait(b, direct);
  const t0 = performance.now();
  await typeAndSend(a, direct);
  await withTimeout(evaluate(b, "window.__arrived"), "B to get A's direct message");
  const directMs = performance.now() - t0;
  await until(b, `[...document.querySelectorAll('#peers button')].some((x) => x.textContent.startsWith(${JSON.stringify(userA)}) && x.querySelector('.unread')?.textContent === '1')`, "an unread marker for A on B");
  await screenshot(b, "peer-b-unread.png");
  await openPeer(b, userA);
  await until(b, `[...document.querySelectorAll('#messages .text')].some((e) => e.textContent === ${JSON.stringify(direct)})`, "the message in B's conversation");
  await until(a, "document.querySelector('#messages li:last-child .meta').textContent.includes('delivered')", "A's message marked delivered");
  await screenshot(a, "peer-a-delivered.png");

  // B broadcasts; A sees it live in "Everyone".
  await evaluate(b, "document.querySelector('#broadcast-item button').click(), true");
  await evaluate(a, "document.querySelector('#broadcast-item button').click(), true");
  const everyone = `hello everyone from ${userB} (${Date.now()})`;
  await armWait(a, everyone);
  const t1 = performance.now();
  await typeAndSend(b, everyone);
  await withTimeout(evaluate(a, "window.__arrived"), "A to get B's broadcast");
  const broadcastMs = performance.now() - t1;
  await until(a, `[...document.querySelectorAll('#messages .text')].some((e) => e.textContent === ${JSON.stringify(everyone)})`, "the broadcast on A's page");
  const onB = await shownTexts(b);
  if (onB.filter((t) => t === everyone).length !== 1) throw new Error(`B shows its broadcast ${JSON.stringify(onB)}`);
  await screenshot(a, "peer-a-broadcast.png");

  console.log(JSON.stringify({
    ok: true,
    direct_ms: Math.round(directMs * 10) / 10,
    broadcast_ms: Math.round(broadcastMs * 10) / 10,
  }));
  await finish();
} catch (e) {
  await finish(e);
}
