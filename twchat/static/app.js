// twchat in the browser: one WebSocket, JSON events in, typed lines out.
// Everything from the server is inserted as text (textContent), never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  ws: null,
  nick: "",          // the nickname to register (again, after a reconnect)
  registered: false,
  room: "",
  joining: "",       // the room asked for with /join, until the server answers
  users: [],
  operators: [],     // the founder and operators of the room, among users
  rooms: [],
  lastLine: "",
  retry: 0,
  // The account's password: typed (kept for reconnecting) or remembered.
  password: localStorage.getItem("twchat-password") || "",
  passwordSent: false,
  askingPassword: false,
};
const WRONG_PASSWORD = "wrong password for ";
// Sent out of the room by an operator (the server's wording, twchat/wire.py).
const SENT_OUT = ["you were kicked from #", "you are banned from #"];

function keyOf(name) { return name.replace(/^#/, "").toLowerCase(); }

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + kind;
}

function stamp(ts) {
  const d = ts ? new Date(ts * 1000) : new Date();
  return d.toTimeString().slice(0, 5);
}

function append(cls, parts, ts) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const li = document.createElement("li");
  li.className = cls;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = stamp(ts);
  li.appendChild(time);
  for (const [text, partClass] of parts) {
    const span = document.createElement("span");
    if (partClass) span.className = partClass;
    span.textContent = text;
    li.appendChild(span);
  }
  list.appendChild(li);
  // Follow the conversation, unless the reader scrolled up to read back.
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

function mentionsMe(text) {
  if (!state.nick) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp("(^|[^\\w\\-\\[\\]{}|^`])" + escaped + "($|[^\\w\\-\\[\\]{}|^`])", "i").test(text);
}

function chatLine(nick, text, cls, ts) {
  const li = append(cls, [["<" + nick + "> ", "nick"], [text, ""]], ts);
  if (cls === "chat" && mentionsMe(text)) li.classList.add("mention");
}

// What an operator may do to a person, one click each (the server checks).
const PERSON_ACTIONS = [
  ["kick", (n) => "/kick " + n],
  ["mute", (n) => "/mute " + n + " 10m"],
  ["ban", (n) => "/ban " + n],
];

function renderUsers() {
  const ul = $("users");
  ul.replaceChildren();
  const ops = new Set(state.operators.map((n) => n.toLowerCase()));
  const iAmOperator = ops.has(state.nick.toLowerCase());
  for (const name of [...state.users].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.textContent = (ops.has(name.toLowerCase()) ? "@" : "") + name;
    if (ops.has(name.toLowerCase())) {
      li.classList.add("operator");
      who.title = "operator of #" + state.room;
    }
    li.appendChild(who);
    if (iAmOperator && name.toLowerCase() !== state.nick.toLowerCase()) {
      for (const [label, command] of PERSON_ACTIONS) {
        const button = document.createElement("button");
        button.className = "person-action " + label;
        button.textContent = label;
        button.title = command(name);
        button.addEventListener("click", () => send(command(name)));
        li.appendChild(button);
      }
    }
    ul.appendChild(li);
  }
  $("count").textContent = "(" + state.users.length + ")";
  if (state.rooms.length) renderRooms(state.rooms);
}

function renderRooms(rooms) {
  state.rooms = rooms;
  const ul = $("rooms");
  ul.replaceChildren();
  for (const room of rooms) {
    // Our own room's count follows the joins and leaves we see.
    if (keyOf(room.name) === keyOf(state.room)) room.users = state.users.length;
    const li = document.createElement("li");
    li.textContent = "#" + room.name + " (" + room.users + ")";
    li.dataset.room = room.name;
    if (keyOf(room.name) === keyOf(state.room)) li.classList.add("current");
    if (room.topic) {
      const topic = document.createElement("span");
      topic.className = "topic";
      topic.textContent = room.topic;
      li.appendChild(topic);
    }
    li.addEventListener("click", () => joinRoom(room.name));
    ul.appendChild(li);
  }
}

function setRoom(name) {
  state.room = name;
  $("room-name").textContent = "#" + name;
  $("topic").textContent = "";
}

function send(text) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(text);
}

function joinRoom(name) {
  if (keyOf(name) === keyOf(state.room)) return;
  state.joining = name;
  send("/join " + name);
}

const handlers = {
  greeting() {},
  prompt() {
    if (state.nick) {
      send(state.nick);  // registering again after a reconnect
    } else {
      showLogin();
    }
  },
  password_prompt(ev) {
    if (state.password && !state.passwordSent) {
      state.passwordSent = true;
      send(state.password);  // logging in again after a reconnect
      return;
    }
    state.passwordSent = false;
    state.askingPassword = true;
    $("password-label").textContent = ev.new
      ? "Choose a password for " + ev.nick + " (at least 8 characters)"
      : "Password for " + ev.nick;
    $("nick").value = ev.nick;
    $("password-row").hidden = false;
    $("password").value = "";
    showLogin();
    $("password").focus();
  },
  error(ev) {
    if (ev.text.startsWith(WRONG_PASSWORD)) {
      state.password = "";  // never retried on its own
      localStorage.removeItem("twchat-password");
    }
    if (!state.registered || state.askingPassword) {
      $("login-error").textContent = ev.text;
      state.nick = "";
      state.askingPassword = false;
      $("password-row").hidden = true;
      if (!state.registered) showLogin(); else hideLogin();
    } else if (SENT_OUT.some((p) => ev.text.startsWith(p))) {
      // Why we are out; the default room's member list ("who") comes next.
      append("moderation sent-out", [["! " + ev.text, ""]]);
      state.joining = "*";
    } else {
      append("error", [["! " + ev.text, ""]]);
      state.joining = "";
    }
  },
  moderation(ev) {
    append("moderation " + ev.action, [[ev.text, ""]]);
    // Who is an operator may have changed: ask for the marks again.
    if (["op", "deop", "founded"].includes(ev.action)) send("/who");
  },
  registered(ev) {
    state.registered = true;
    state.nick = ev.nick;
    state.passwordSent = false;
    state.askingPassword = false;
    $("password-row").hidden = true;
    localStorage.setItem("twchat-nick", ev.nick);
    state.retry = 0;
    setRoom(ev.room);
    state.users = ev.names.slice();
    $("login").hidden = true;
    $("chat").hidden = false;
    $("sidebar").hidden = false;
    $("login-error").textContent = "";
    append("notice", [["Welcome, " + ev.nick + "! You are in #" + ev.room + ".", ""]]);
    renderUsers();
    send("/who");
    send("/rooms");
    $("line").focus();
  },
  who(ev) {
    if (state.joining && (state.joining === "*" || keyOf(ev.room) === keyOf(state.joining))) {
      state.joining = "";
      setRoom(ev.room);
      append("divider", [["— now in #" + ev.room + " —", ""]]);
      send("/rooms");
    }
    if (keyOf(ev.room) === keyOf(state.room)) {
      state.users = ev.names.slice();
      state.operators = (ev.operators || []).slice();
      renderUsers();
    } else {
      append("notice", [["#" + ev.room + ": " + ev.names.join(", "), ""]]);
    }
  },
  rooms(ev) { renderRooms(ev.rooms); },
  topic(ev) {
    if (keyOf(ev.room) === keyOf(state.room)) $("topic").textContent = ev.text;
    if (ev.setter) append("notice", [[ev.setter + " set the topic: " + ev.text, ""]]);
    else if (!ev.text) append("notice", [["#" + ev.room + " has no topic", ""]]);
  },
  chat(ev) { chatLine(ev.nick, ev.text, "chat"); },
  action(ev) { append("action", [["* " + ev.nick + " " + ev.text, ""]]); },
  private(ev) { append("private", [["*" + ev.sender + "* " + ev.text, ""]]); },
  private_sent(ev) { append("private", [["-> *" + ev.target + "* " + ev.text, ""]]); },
  joined(ev) {
    const from = ev.came_from ? " from #" + ev.came_from : "";
    append("notice", [[ev.nick + " joined" + from, ""]]);
    if (!state.users.includes(ev.nick)) state.users.push(ev.nick);
    renderUsers();
  },
  left(ev) {
    const where = ev.went_to ? " for #" + ev.went_to : "";
    append("notice", [[ev.nick + " left" + where + (ev.reason ? ": " + ev.reason : ""), ""]]);
    state.users = state.users.filter((n) => n !== ev.nick);
    renderUsers();
  },
  presence(ev) {
    const parts = [];
    if (ev.joined) parts.push(ev.joined + " joined");
    if (ev.left) parts.push(ev.left + " left");
    append("notice", [[parts.join(", ") + " (" + ev.online + " here)", ""]]);
    send("/who");
  },
  nick(ev) {
    append("notice", [[ev.old + " is now known as " + ev.new, ""]]);
    if (ev.old === state.nick) state.nick = ev.new;
    state.users = state.users.map((n) => (n === ev.old ? ev.new : n));
    renderUsers();
  },
  history(ev) {
    if (ev.kind === "action") append("history", [["* " + ev.sender + " " + ev.text, ""]], ev.ts);
    else if (ev.kind === "topic") append("history", [[ev.sender + " set the topic: " + ev.text, ""]], ev.ts);
    else chatLine(ev.sender, ev.text, "history", ev.ts);
  },
  notice(ev) { append("notice", [[ev.text, ""]]); },
};

function hideLogin() {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("sidebar").hidden = false;
}

function showLogin() {
  $("login").hidden = false;
  $("chat").hidden = true;
  $("sidebar").hidden = true;
  $("nick").focus();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  state.ws = ws;
  setStatus("connecting…", "connecting");
  ws.onopen = () => setStatus("connected", "online");
  ws.onmessage = (message) => {
    for (const line of message.data.split("\n")) {
      if (!line) continue;
      const ev = JSON.parse(line);
      const handler = handlers[ev.type];
      if (handler) handler(ev);
    }
  };
  ws.onclose = () => {
    state.registered = false;
    // Reconnect with backoff, then register again with the same nickname.
    const delay = Math.min(30, 2 ** state.retry) * 1000;
    state.retry += 1;
    setStatus("disconnected — reconnecting in " + delay / 1000 + " s", "offline");
    setTimeout(connect, delay);
  };
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (state.askingPassword) {
    const password = $("password").value;
    if (!password) return;
    state.askingPassword = false;
    state.password = password;
    state.passwordSent = true;
    // Only if asked to, and only in this browser's own storage.
    if ($("remember-password").checked) localStorage.setItem("twchat-password", password);
    $("password").value = "";
    $("password-row").hidden = true;
    $("login-error").textContent = "";
    send(password);
    if (state.registered) hideLogin();  // a /nick to an account
    return;
  }
  const nick = $("nick").value.trim();
  if (!nick) return;
  state.nick = nick;
  $("login-error").textContent = "";
  send(nick);
});

$("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("line");
  const text = input.value;
  if (!text.trim()) return;
  send(text);
  state.lastLine = text;
  input.value = "";
  // The server does not echo our own lines: show them as sent.
  if (text.startsWith("//")) chatLine(state.nick, text.slice(1), "own");
  else if (/^\/me /i.test(text)) append("action own", [["* " + state.nick + " " + text.slice(4), ""]]);
  else if (/^\/join\s+\S/i.test(text)) state.joining = text.split(/\s+/)[1];
  else if (/^\/part\b/i.test(text)) state.joining = "*";  // the default room
  else if (!text.startsWith("/")) chatLine(state.nick, text, "own");
});

$("line").addEventListener("keydown", (e) => {
  if (e.key === "ArrowUp" && !e.target.value) {
    e.target.value = state.lastLine;
    e.preventDefault();
  }
});

$("new-room").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("new-room-name").value.trim();
  if (name) joinRoom(name);
  $("new-room-name").value = "";
});

$("nick").value = localStorage.getItem("twchat-nick") || "";
connect();
