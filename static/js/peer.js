// The peer page: other peers (online or not), direct conversations, broadcasts to everyone,
// unread markers, and the chat server's channels, all from this node's own origin.
//
// Rules this file keeps:
// * Text people wrote is only ever set with textContent: it is shown as text, never as HTML.
// * URLs are relative: the page talks only to its own node.
// * One EventSource; when it (re)opens, the page loads the history again, so nothing missed
//   while it was closed is lost, and messages are keyed by their place (n), so nothing shows
//   twice.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  me: null,
  conv: location.hash ? decodeURIComponent(location.hash.slice(1)) : "broadcast",
  messages: new Map(), // n -> message
  peers: [],
  broadcastUnread: 0,
  channel: null, // a server channel shown instead of a conversation
  // Fates heard by the stream ("id|peer" -> fate): one may come before the message it is
  // about (the answer to our own send can arrive after it), and a fate never goes back.
  fates: new Map(),
};

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

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

function nameOf(id) {
  const p = state.peers.find((p) => p.id === id);
  return p ? p.name : id;
}

function titleOf(conv) {
  if (conv === "broadcast") return "Everyone";
  return nameOf(conv.replace(/^peer:/, ""));
}

// ----- peers -----

function renderPeers() {
  const list = $("peers");
  list.replaceChildren();
  for (const p of state.peers) {
    const li = document.createElement("li");
    const conv = "peer:" + p.id;
    if (!state.channel && conv === state.conv) li.className = "current";
    const b = document.createElement("button");
    b.dataset.conv = conv;
    const name = document.createElement("span");
    name.className = p.online || p.listed ? "presence on" : "presence off";
    name.textContent = p.name;
    name.title = (p.online ? "linked" : p.listed ? "online" : "offline") + (p.addr ? " · " + p.addr : "");
    b.append(name);
    if (p.unread > 0 && conv !== state.conv) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = String(p.unread);
      b.append(badge);
    }
    b.addEventListener("click", () => select(conv));
    li.append(b);
    list.append(li);
  }
  const item = $("broadcast-item");
  item.className = !state.channel && state.conv === "broadcast" ? "current" : "";
  const button = item.querySelector("button");
  button.querySelector(".unread")?.remove();
  if (state.broadcastUnread > 0 && state.conv !== "broadcast") {
    const badge = document.createElement("span");
    badge.className = "unread";
    badge.textContent = String(state.broadcastUnread);
    button.append(badge);
  }
}

function onPeers(data) {
  state.me = data.me;
  state.peers = data.peers;
  state.broadcastUnread = data.broadcast_unread;
  $("me").textContent = data.me.name + (data.me.registered ? "" : " (not registered)");
  if (data.me.trouble) notice("Tracker: " + data.me.trouble);
  renderPeers();
  if (!state.channel) $("title").textContent = titleOf(state.conv);
}

// ----- messages -----

function fateText(m) {
  const fates = Object.values(m.fates || {});
  if (fates.length === 0) return "";
  const delivered = fates.filter((f) => f === "delivered").length;
  const failed = fates.filter((f) => f === "failed").length;
  if (m.kind === "broadcast") {
    return ` · delivered to ${delivered} of ${fates.length}` + (failed ? `, ${failed} failed` : "");
  }
  return failed ? " · not delivered" : delivered ? " · delivered ✓" : " · sending…";
}

function render() {
  const list = $("messages");
  list.replaceChildren();
  const shown = [...state.messages.values()]
    .filter((m) => m.conversation === state.conv)
    .sort((a, b) => a.n - b.n);
  for (const m of shown) {
    const li = document.createElement("li");
    li.dataset.n = String(m.n);
    const fates = Object.values(m.fates || {});
    if (fates.includes("failed") && m.kind === "direct") li.className = "failed";
    else if (fates.length && fates.every((f) => f === "pending")) li.className = "pending";
    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = m.from_name;
    const when = document.createElement("span");
    when.textContent = new Date(m.sent_ms).toLocaleTimeString() + fateText(m);
    meta.append(author, when);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    li.append(meta, text);
    list.append(li);
  }
  list.scrollTop = list.scrollHeight;
  markRead(shown);
}

async function markRead(shown) {
  const last = shown.length ? shown[shown.length - 1].n : 0;
  if (last === 0 || document.hidden) return;
  const peer = state.peers.find((p) => "peer:" + p.id === state.conv);
  const unread = state.conv === "broadcast" ? state.broadcastUnread : peer ? peer.unread : 0;
  if (unread > 0) await postJson("read", { conversation: state.conv, upto: String(last) });
}

function withFates(m) {
  for (const peer of Object.keys(m.fates || {})) {
    const heard = state.fates.get(m.id + "|" + peer);
    if (heard && m.fates[peer] === "pending") m.fates[peer] = heard;
  }
  return m;
}

function onMessage(m) {
  state.messages.set(m.n, withFates(m));
  if (!state.channel && m.conversation === state.conv) render();
  // For tests and extensions: a message reached this page.
  document.dispatchEvent(new CustomEvent("peer:message", { detail: m }));
}

function onStatus(s) {
  state.fates.set(s.id + "|" + s.peer, s.fate);
  for (const m of state.messages.values()) {
    if (m.id === s.id && m.fates && s.peer in m.fates) {
      m.fates[s.peer] = s.fate;
      if (!state.channel && m.conversation === state.conv) render();
    }
  }
}

async function loadMessages() {
  const r = await api("messages");
  if (!r.ok) return;
  const body = await r.json();
  for (const m of body.messages) state.messages.set(m.n, withFates(m));
  if (!state.channel) render();
  document.documentElement.dataset.ready = "true";
}

function select(conv) {
  state.channel = null;
  state.conv = conv;
  location.hash = encodeURIComponent(conv);
  $("title").textContent = titleOf(conv);
  document.body.classList.remove("sidebar-open");
  renderPeers();
  render();
}

// ----- the server's channels (relayed by this node) -----

async function loadServerChannels() {
  const r = await api("channels");
  const list = $("server-channels");
  list.replaceChildren();
  if (!r.ok) return;
  for (const c of await r.json()) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.textContent = "#" + c.name;
    b.addEventListener("click", () => showChannel(c.name));
    li.append(b);
    list.append(li);
  }
}

async function showChannel(name) {
  state.channel = name;
  $("title").textContent = "#" + name + " (server)";
  const r = await api("channel/" + encodeURIComponent(name) + "/messages?limit=100");
  const list = $("messages");
  list.replaceChildren();
  if (!r.ok) return;
  for (const m of (await r.json()).messages) {
    const li = document.createElement("li");
    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = m.author;
    meta.append(author);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    li.append(meta, text);
    list.append(li);
  }
  renderPeers();
}

// ----- sending -----

async function send(text) {
  if (state.channel) {
    const r = await postJson("channel/" + encodeURIComponent(state.channel) + "/message", { text });
    if (r.ok) showChannel(state.channel);
    else notice((await r.json()).message || "not sent");
    return;
  }
  const r = state.conv === "broadcast"
    ? await postJson("broadcast-peer", { message: text })
    : await postJson("send-peer", { peer: state.conv.replace(/^peer:/, ""), message: text });
  if (r.ok) {
    onMessage(await r.json());
    notice("");
  } else {
    const body = await r.json().catch(() => ({}));
    notice(body.message || "not sent (" + r.status + ")");
  }
}

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = e.target.elements.text;
  const text = box.value.trim();
  if (!text) return;
  box.value = "";
  await send(text);
});

$("composer").elements.text.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});

$("connect").addEventListener("submit", async (e) => {
  e.preventDefault();
  const addr = e.target.elements.addr.value.trim();
  const at = addr.lastIndexOf(":");
  notice("Connecting to " + addr + "…");
  const r = await postJson("connect-peer", { ip: addr.slice(0, at), port: addr.slice(at + 1) });
  const body = await r.json().catch(() => ({}));
  notice(r.ok ? "Connected to " + body.name + "." : body.message || "could not connect");
  if (r.ok) e.target.reset();
});

$("broadcast-item").querySelector("button").addEventListener("click", () => select("broadcast"));

$("logout").addEventListener("click", async () => {
  await api("logout", { method: "POST" });
  location.href = "login.html";
});

$("open-sidebar").addEventListener("click", () => document.body.classList.add("sidebar-open"));
$("close-sidebar").addEventListener("click", () => document.body.classList.remove("sidebar-open"));

// ----- live updates -----

function listen() {
  const events = new EventSource("events");
  events.addEventListener("open", () => {
    $("connection").textContent = "live";
    $("connection").className = "status live";
    loadMessages();
  });
  events.addEventListener("error", () => {
    $("connection").textContent = "reconnecting…";
    $("connection").className = "status";
  });
  events.addEventListener("peers", (e) => onPeers(JSON.parse(e.data)));
  events.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
  events.addEventListener("status", (e) => onStatus(JSON.parse(e.data)));
}

listen();
loadServerChannels();
