// The chat page: channels, history, live updates over one event stream, sending with retries.
//
// Rules this file keeps:
// * Text people wrote is only ever set with textContent: it is shown as text, never as HTML.
// * URLs are relative, so the page works on the app's own port and through the proxy.
// * One EventSource for every channel (browsers allow six connections per origin).
// * No gaps, no duplicates: messages are keyed by (channel, seq); a jump in seq fetches the
//   missing ones; the browser's own reconnect sends Last-Event-ID and the server replays
//   what was missed (or says "reset" and we reload).
// * A send carries a transaction id and is retried with it, so a retry never posts twice.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  me: null,
  current: (location.hash || "#general").slice(1).toLowerCase(),
  channels: new Map(), // name -> { name, messages: Map(seq -> message), max, loaded, unread, count }
  events: null,
};

function channel(name) {
  let ch = state.channels.get(name);
  if (!ch) {
    ch = { name, messages: new Map(), max: 0, loaded: false, unread: 0, count: 0 };
    state.channels.set(name, ch);
  }
  return ch;
}

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (r.status === 401) {
    location.href = "login.html";
    throw new Error("signed out");
  }
  return r;
}

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

// ----- channels -----

async function loadChannels() {
  const r = await api("channels");
  if (!r.ok) return;
  for (const c of await r.json()) channel(c.name).count = c.messages;
  renderChannels();
}

function renderChannels() {
  const list = $("channels");
  list.replaceChildren();
  for (const ch of [...state.channels.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const li = document.createElement("li");
    if (ch.name === state.current) li.className = "current";
    const b = document.createElement("button");
    const name = document.createElement("span");
    name.textContent = "#" + ch.name;
    b.append(name);
    if (ch.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(ch.unread);
      b.append(badge);
    }
    b.addEventListener("click", () => select(ch.name));
    li.append(b);
    list.append(li);
  }
}

async function select(name) {
  state.current = name;
  const ch = channel(name);
  ch.unread = 0;
  history.replaceState(null, "", "#" + name);
  $("title").textContent = "#" + name;
  document.body.classList.remove("sidebar-open");
  if ([...state.channels.values()].every((c) => c.unread === 0)) notice("");
  renderChannels();
  if (!ch.loaded) await loadHistory(ch);
  renderMessages();
}

// ----- messages -----

// Adds a message once; false if it was there already.
function add(m) {
  const ch = channel(m.channel);
  if (ch.messages.has(m.seq)) return false;
  ch.messages.set(m.seq, m);
  ch.max = Math.max(ch.max, m.seq);
  return true;
}

async function loadHistory(ch) {
  const r = await api(`channel/${encodeURIComponent(ch.name)}/messages?limit=200`);
  if (!r.ok) return;
  for (const m of (await r.json()).messages) add(m);
  ch.loaded = true;
}

// Fetches what came after the last message we hold (a gap the stream revealed).
async function backfill(ch) {
  for (;;) {
    const r = await api(`channel/${encodeURIComponent(ch.name)}/messages?after=${ch.max}&limit=200`);
    if (!r.ok) return;
    const page = (await r.json()).messages;
    for (const m of page) add(m);
    if (page.length < 200) return;
  }
}

function messageItem(m) {
  const li = document.createElement("li");
  li.dataset.seq = String(m.seq);
  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = m.author;
  const time = document.createElement("time");
  const when = new Date(m.ts_ms);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  meta.append(author, time);
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text;
  li.append(meta, text);
  return li;
}

function renderMessages() {
  const list = $("messages");
  const ch = channel(state.current);
  const pending = [...list.querySelectorAll("li.pending, li.failed")];
  list.replaceChildren(...[...ch.messages.values()].sort((a, b) => a.seq - b.seq).map(messageItem), ...pending);
  list.scrollTop = list.scrollHeight;
}

async function onMessage(m) {
  if (!state.channels.has(m.channel)) await loadChannels();
  const ch = channel(m.channel);
  if (ch.loaded && m.seq > ch.max + 1) await backfill(ch);
  if (!add(m)) return;
  ch.count = Math.max(ch.count, m.seq);
  if (m.channel === state.current) {
    renderMessages();
  } else {
    ch.unread += 1;
    notice(`New messages in #${m.channel}`);
    renderChannels();
  }
  // For tests and extensions: a message reached the page.
  document.dispatchEvent(new CustomEvent("chat:message", { detail: m }));
}

// ----- sending -----

function txnId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

async function send(name, text) {
  const txn = txnId();
  const placeholder = messageItem({ seq: 0, author: state.me || "", text, ts_ms: Date.now() });
  placeholder.classList.add("pending");
  $("messages").append(placeholder);
  $("messages").scrollTop = $("messages").scrollHeight;
  for (let attempt = 0; attempt < 10; attempt++) {
    let r;
    try {
      r = await postJson(`channel/${encodeURIComponent(name)}/message`, { text, txn });
    } catch (e) {
      if (e.message === "signed out") return;
      await sleep(Math.min(500 * 2 ** attempt, 8000));
      continue;
    }
    if (r.ok) {
      placeholder.remove();
      const m = await r.json();
      if (add(m) && m.channel === state.current) renderMessages();
      return;
    }
    if (r.status === 503 || r.status === 409) {
      const wait = Number(r.headers.get("Retry-After") || "1");
      await sleep(Math.max(wait, 1) * 1000);
      continue;
    }
    const body = await r.json().catch(() => ({}));
    placeholder.classList.replace("pending", "failed");
    placeholder.querySelector(".text").textContent = `${text}\n(not sent: ${body.message || r.status})`;
    return;
  }
  placeholder.classList.replace("pending", "failed");
}

// ----- the event stream -----

function connect() {
  const es = new EventSource("events");
  state.events = es;
  const status = $("connection");
  es.onopen = () => {
    status.textContent = "live";
    status.className = "status live";
    loadChannels();
  };
  es.onerror = async () => {
    status.textContent = "reconnecting…";
    status.className = "status";
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (the server answered with an error): see whether we are still
      // signed in (api() leaves for the sign-in page if not), then start over.
      await sleep(2000);
      try {
        await api("me");
      } catch (_) {
        return;
      }
      connect();
    }
  };
  es.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
  es.addEventListener("presence", (e) => {
    const list = $("online");
    list.replaceChildren(
      ...JSON.parse(e.data).online.map((u) => {
        const li = document.createElement("li");
        li.textContent = u;
        return li;
      }),
    );
  });
  es.addEventListener("reset", async () => {
    // Too much was missed to replay: reload what we show.
    for (const ch of state.channels.values()) if (ch.loaded) await backfill(ch);
    renderMessages();
  });
  es.addEventListener("shutdown", () => {
    status.textContent = "server restarting…";
    status.className = "status";
  });
}

// ----- the page -----

async function start() {
  const r = await api("me");
  state.me = (await r.json()).user;
  $("me").textContent = state.me;
  await loadChannels();
  if (!state.channels.has(state.current)) state.current = "general";
  await select(state.current);
  connect();

  const composer = $("composer");
  const box = composer.elements.text;
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = box.value;
    if (!text.trim()) return;
    box.value = "";
    send(state.current, text);
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });

  $("new-channel").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = e.target.elements.name;
    const name = input.value.trim().toLowerCase();
    let r = await postJson("channels", { name });
    // Someone else's creation of that name is being saved: ask again when it says.
    for (let i = 0; i < 5 && r.status === 409 && r.headers.get("Retry-After"); i++) {
        await new Promise((ok) => setTimeout(ok, 1000 * Number(r.headers.get("Retry-After"))));
        r = await postJson("channels", { name });
    }
    if (r.ok || r.status === 409) {
      input.value = "";
      await loadChannels();
      await select(name);
    } else {
      notice((await r.json().catch(() => ({}))).message || "Could not make that channel.");
    }
  });

  const dialog = $("password-dialog");
  $("change-password").addEventListener("click", () => {
    $("password-form").reset();
    $("password-error").hidden = true;
    dialog.showModal();
  });
  $("password-cancel").addEventListener("click", () => dialog.close());
  $("password-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const r = await postJson("password", { current: f.current.value, password: f.password.value });
    if (r.ok) {
      dialog.close();
      notice("Password changed. Your other devices are signed out.");
      return;
    }
    const why = (await r.json().catch(() => ({}))).message || "The password was not changed.";
    $("password-error").textContent = why;
    $("password-error").hidden = false;
  });

  $("logout").addEventListener("click", async () => {
    await fetch("logout", { method: "POST", credentials: "same-origin" });
    location.href = "login.html";
  });
  $("open-sidebar").addEventListener("click", () => document.body.classList.add("sidebar-open"));
  $("close-sidebar").addEventListener("click", () => document.body.classList.remove("sidebar-open"));
  document.documentElement.dataset.ready = "true";
}

start();
