// twchat in the browser: one WebSocket, JSON events in, typed lines out.
// Everything from the server is inserted as text (textContent), never HTML;
// links are made from that text, http(s) only.
"use strict";

const $ = (id) => document.getElementById(id);
// What this tab was doing, kept across a reload (sessionStorage is the
// tab's own). Only a reload (or Back) takes it up: a duplicated tab has a
// copy, and logging in with it would close the first tab's connection.
const reloaded = ["reload", "back_forward"].includes(
  (performance.getEntriesByType("navigation")[0] || {}).type);
const tab = {
  get nick() { return reloaded && sessionStorage.getItem("twchat-tab-nick") || ""; },
  get room() { return reloaded && sessionStorage.getItem("twchat-tab-room") || ""; },
  save(nick, room) {
    sessionStorage.setItem("twchat-tab-nick", nick);
    sessionStorage.setItem("twchat-tab-room", room);
  },
  forget() {
    sessionStorage.removeItem("twchat-tab-nick");
    sessionStorage.removeItem("twchat-tab-room");
  },
};

const state = {
  ws: null,
  // The nickname to register (again, after a reconnect or a reload).
  nick: tab.nick,
  registered: false,
  room: "",          // the room the server has us in
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
  askedNick: "",     // the account whose password is asked for
  views: new Map(),  // "#room" or "@nick" -> its own list of lines
  lastModeration: null,
  carried: [],       // why we were sent out, shown again where we land
  current: "",       // the view shown
  newPasswords: [],  // set by /register or /password sent, until confirmed
  // The last line typed that carries words to others (chat, /me, /msg):
  // what it said, and its line shown as sent, until the next one.
  typed: null,
  // Why the close to come is not to be undone by reconnecting (/quit typed,
  // or the server sent us away), as the nickname form then says.
  leaving: "",
  // A /who (its room) or /rooms typed here, until answered: the answer goes
  // in the conversation too, since on a phone the lists are out of sight.
  askedWho: "",
  askedRooms: false,
  // Lines typed while not connected (or not yet registered again), each
  // shown as waiting: sent in order once back, as the terminal client does.
  waiting: [],
  reconnect: null,   // the timer of the next attempt to connect
  // Since when, back after a lost connection, we ask for our own name
  // again (0: not), and the timer of the next time.
  reclaimingSince: tab.nick ? Date.now() : 0,  // reloaded: the old page's
  retryNick: null,
};
const WRONG_PASSWORD = "wrong password for ";
// The server's confirmations of a password set (twchat/accounts/__init__.py).
const NOW_REGISTERED = " is now registered; next time you will be asked for its password";
const PASSWORD_CHANGED = "your password has been changed";
// Sent out of the room by an operator (the server's wording, twchat/wire.py).
const SENT_OUT = ["you were kicked from #", "you are banned from #"];
// Sent away from the server itself (or closed as idle, --idle-timeout): the
// page does not come back on its own.
const SENT_AWAY = ["you were disconnected by ", "you are banned from this server", "idle for "];
// Our account logged in from another connection (twchat/accounts): coming
// back would take it from there, and that one from here again, for ever.
const TAKEN_OVER = " logged in from another connection; closing this one";
const LINK = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

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

// A colour per nickname: the same name is the same hue everywhere.
function hueOf(nick) {
  let h = 2166136261;  // FNV-1a, then the golden angle: near names differ
  for (const c of nick.toLowerCase()) h = Math.imul(h ^ c.codePointAt(0), 16777619);
  return Math.round(((h >>> 0) * 137.508) % 360);
}

// Text with its http(s) links as links; the rest stays text.
function withLinks(text) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const found of text.matchAll(LINK)) {
    if (found.index > at) out.append(text.slice(at, found.index));
    const a = document.createElement("a");
    a.href = found[0];
    a.textContent = found[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    out.append(a);
    at = found.index + found[0].length;
  }
  if (at < text.length) out.append(text.slice(at));
  return out;
}

// Views: each room and each private conversation has its own lines.

function viewOf(key, title) {
  let view = state.views.get(key);
  if (!view) {
    const list = document.createElement("ol");
    list.className = "view";
    // ``mine``: our own lines shown as sent; the server does not echo them,
    // so their ids are learnt when they come back as history.
    view = { key, title, list, unread: 0, lastId: 0, seen: new Set(), mine: [] };
    state.views.set(key, view);
    renderConversations();
  }
  return view;
}

function roomView(name) { return viewOf("#" + keyOf(name), "#" + name); }

function show(key) {
  const view = state.views.get(key);
  if (!view) return;
  state.current = key;
  view.unread = 0;
  $("messages").replaceChildren(view.list);
  $("messages").scrollTop = $("messages").scrollHeight;
  const isRoom = key.startsWith("#");
  $("room-name").textContent = isRoom ? "#" + state.room : "private: " + view.title.slice(1);
  $("topic").hidden = !isRoom;
  $("line").placeholder = isRoom ? "Say something, or /help" : "Message " + view.title.slice(1);
  document.body.classList.remove("drawer-open");
  renderConversations();
  if (state.rooms.length) renderRooms(state.rooms);
}

function currentView() {
  return state.views.get(state.current) || roomView(state.room || "lobby");
}

// One line into a view. ``id``: its place in the room's history, shown once.
function append(cls, parts, ts, view, id) {
  view = view || currentView();
  if (id) {
    if (view.seen.has(id)) return null;  // replayed, but already here
    view.seen.add(id);
  }
  const box = $("messages");
  const shown = view.key === state.current;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const li = document.createElement("li");
  li.className = cls;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = stamp(ts);
  li.appendChild(time);
  for (const [text, partClass, nick] of parts) {
    const span = document.createElement("span");
    if (partClass) span.className = partClass;
    if (nick) span.style.setProperty("--hue", hueOf(nick));
    if (partClass === "") span.append(withLinks(text)); else span.textContent = text;
    li.appendChild(span);
  }
  // An older line (a /history reaching back past what is shown) goes in its
  // place by id, not at the bottom: ids grow in a room on both backends.
  const later = id && id < view.lastId
    ? Array.from(view.list.children).find((el) => Number(el.dataset.id) > id)
    : null;
  if (id) {
    li.dataset.id = id;
    view.lastId = Math.max(view.lastId, id);
  }
  if (later) {
    view.list.insertBefore(li, later);
    return li;  // old news: no unread mark, no scrolling
  }
  view.list.appendChild(li);
  if (!shown) {
    view.unread += 1;
    renderConversations();
  } else if (atBottom) {
    box.scrollTop = box.scrollHeight;  // follow, unless reading back
  }
  return li;
}

function mentionsMe(text) {
  if (!state.nick) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp("(^|[^\\w\\-\\[\\]{}|^`])" + escaped + "($|[^\\w\\-\\[\\]{}|^`])", "i").test(text);
}

function chatLine(nick, text, cls, ts, view, id) {
  const li = append(cls, [["<" + nick + "> ", "nick", nick], [text, ""]], ts, view, id);
  if (li && cls === "chat") {  // another's line: news, perhaps naming us
    const mention = mentionsMe(text);
    if (mention) li.classList.add("mention");
    unseenLine(mention);
  }
  return li;
}

function roomLine(cls, parts, ts, id) { return append(cls, parts, ts, roomView(state.room), id); }

// What an operator may do to a person (the server checks). Kick and a
// 10-minute mute are one click; a ban is put in the box, to be completed
// (how long, why) and sent with Enter: a stray click bans nobody for ever.
const PERSON_ACTIONS = [
  ["kick", (n) => "/kick " + n, true],
  ["mute", (n) => "/mute " + n + " 10m", true],
  ["ban", (n) => "/ban " + n + " ", false],
];

function fillIn(text) {
  document.body.classList.remove("drawer-open");
  const input = $("line");
  input.value = text;
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

function renderUsers() {
  const ul = $("users");
  ul.replaceChildren();
  const ops = new Set(state.operators.map((n) => n.toLowerCase()));
  const iAmOperator = ops.has(state.nick.toLowerCase());
  for (const name of [...state.users].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "person";
    who.style.setProperty("--hue", hueOf(name));
    who.textContent = (ops.has(name.toLowerCase()) ? "@" : "") + name;
    if (ops.has(name.toLowerCase())) {
      li.classList.add("operator");
      who.title = "operator of #" + state.room;
    }
    if (name.toLowerCase() !== state.nick.toLowerCase()) {
      who.title = (who.title ? who.title + "; " : "") + "click to talk privately";
      who.addEventListener("click", () => show(privateView(name).key));
    }
    li.appendChild(who);
    if (iAmOperator && name.toLowerCase() !== state.nick.toLowerCase()) {
      for (const [label, command, now] of PERSON_ACTIONS) {
        const button = document.createElement("button");
        button.className = "person-action " + label;
        button.textContent = label;
        button.title = now ? command(name) : command(name) + "[DURATION] [REASON], then Enter";
        button.addEventListener("click", () => (now ? send(command(name)) : fillIn(command(name))));
        li.appendChild(button);
      }
    }
    ul.appendChild(li);
  }
  $("count").textContent = "(" + state.users.length + ")";
  if (state.rooms.length) renderRooms(state.rooms);
}

// The text wire's answer to /who, line for line (twchat/wire.py).
function whoLines(ev) {
  if (!ev.names.length) return ["Nobody is in #" + ev.room];
  const users = ev.online + (ev.online === 1 ? " user" : " users");
  const lines = ["#" + ev.room + " has " + users + ": " + ev.names.join(", ")];
  if (ev.operators && ev.operators.length) lines.push("  operators: " + ev.operators.join(", "));
  return lines;
}

function renderRooms(rooms) {
  state.rooms = rooms;
  const ul = $("rooms");
  ul.replaceChildren();
  for (const room of rooms) {
    const key = "#" + keyOf(room.name);
    // Our own room's count follows the joins and leaves we see.
    if (keyOf(room.name) === keyOf(state.room)) room.users = state.users.length;
    const li = document.createElement("li");
    li.textContent = "#" + room.name + " (" + room.users + ")";
    li.dataset.room = room.name;
    if (key === state.current) li.classList.add("current");
    const view = state.views.get(key);
    if (view && view.unread) li.classList.add("unread");
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

// Private conversations, each its own view, listed apart from the rooms.
function privateView(nick) { return viewOf("@" + nick.toLowerCase(), "@" + nick); }

// A private conversation follows its person to a new name (when we see the
// change: they share our room), so what we type there still reaches them.
function renamePrivate(old, now) {
  const from = "@" + old.toLowerCase(), to = "@" + now.toLowerCase();
  const view = state.views.get(from);
  if (!view || from === to || state.views.has(to)) return;
  state.views.delete(from);
  view.key = to;
  view.title = "@" + now;
  state.views.set(to, view);
  append("notice", [[old + " is now known as " + now, ""]], 0, view);
  if (state.current === from) show(to); else renderConversations();
}

function renderConversations() {
  const ul = $("conversations");
  ul.replaceChildren();
  for (const view of state.views.values()) {
    if (!view.key.startsWith("@")) continue;
    const li = document.createElement("li");
    li.textContent = view.title.slice(1);
    li.dataset.view = view.key;
    li.style.setProperty("--hue", hueOf(view.title.slice(1)));
    if (view.key === state.current) li.classList.add("current");
    if (view.unread) {
      li.classList.add("unread");
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = view.unread;
      li.appendChild(badge);
    }
    li.addEventListener("click", () => show(view.key));
    ul.appendChild(li);
  }
  $("conversations-head").hidden = !ul.children.length;
  // On a phone the drawer button says something is waiting.
  const waiting = [...state.views.values()].some((v) => v.unread && v.key.startsWith("@"));
  $("drawer-toggle").classList.toggle("unread", waiting);
}

function setRoom(name) {
  state.room = name;
  tab.save(state.nick, name);
  roomView(name);
  show("#" + keyOf(name));
  $("topic").textContent = "";
  retitle();
}

// While the tab is hidden its title counts what others said, "(3) #lobby —
// twchat", and "(3!)" once a line names you or is private.
const unseen = { count: 0, urgent: false };

function retitle() {
  const mark = unseen.count ? "(" + unseen.count + (unseen.urgent ? "!" : "") + ") " : "";
  document.title = mark + (state.room ? "#" + state.room + " — twchat" : "twchat");
}

function unseenLine(urgent) {
  if (!document.hidden) return;
  unseen.count += 1;
  unseen.urgent = unseen.urgent || urgent;
  retitle();
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unseen.count = 0;
  unseen.urgent = false;
  retitle();
});

function send(text) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(text);
}

function joinRoom(name) {
  document.body.classList.remove("drawer-open");
  if (keyOf(name) === keyOf(state.room)) {
    show("#" + keyOf(name));
    return;
  }
  state.joining = name;
  send("/join " + name);
}

const handlers = {
  greeting() {},
  prompt() {
    state.leaving = "";  // an account banned at login: another name may do
    if (state.retryNick) return;  // our own name, asked for again soon
    if (state.nick) {
      // Back after a lost connection: to our room, with what we missed.
      const view = state.room && state.views.get("#" + keyOf(state.room));
      if (view) send("/resume " + state.room + " " + view.lastId);
      send(state.nick);
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
    state.askedNick = ev.nick;
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
    if (!state.registered && !state.askingPassword && retryOwnNick(ev.text)) return;
    if (SENT_AWAY.some((p) => ev.text.startsWith(p))) state.leaving = "! " + ev.text;
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
      // Why we are out; the default room's member list ("who") comes next,
      // and this is shown there too, with the operator's action.
      roomLine("moderation sent-out", [["! " + ev.text, ""]]);
      state.carried = [state.lastModeration, ["moderation sent-out", "! " + ev.text]];
      state.joining = "*";
    } else {
      append("error", [["! " + ev.text, ""]]);
      if (ev.unsent) unsent();
      state.joining = "";
      state.newPasswords = [];  // at worst we ask after a reconnect
    }
  },
  moderation(ev) {
    roomLine("moderation " + ev.action, [[ev.text, ""]]);
    state.lastModeration = ["moderation " + ev.action, ev.text];
    // Who is an operator may have changed: ask for the marks again.
    if (["op", "deop", "founded"].includes(ev.action)) send("/who");
  },
  registered(ev) {
    const again = state.registered || state.views.size > 0;
    state.reclaimingSince = 0;
    setStatus("connected", "online");  // no longer waiting for our name
    const back = again ? "" : tab.room;  // reloaded: the room it was in
    state.registered = true;
    state.nick = ev.nick;
    state.passwordSent = false;
    state.askingPassword = false;
    $("password-row").hidden = true;
    localStorage.setItem("twchat-nick", ev.nick);
    state.retry = 0;
    hideLogin();
    $("login-error").textContent = "";
    state.users = ev.names.slice();
    if (!again || keyOf(ev.room) === keyOf(state.room)) {
      setRoom(ev.room);
      if (!again) roomLine("notice", [["Welcome, " + ev.nick + "! You are in #" + ev.room + ".", ""]]);
    } else {
      state.joining = state.room;  // resuming elsewhere: its "who" follows
    }
    if (back && keyOf(back) !== keyOf(ev.room)) {
      state.joining = back;
      send("/join " + back);
    }
    renderUsers();
    send("/who");
    send("/rooms");
    if (!state.joining) sendWaiting();
    $("line").focus();
  },
  who(ev) {
    const entering = ev.entered || (state.joining && (state.joining === "*" || keyOf(ev.room) === keyOf(state.joining)));
    if (entering) {
      state.joining = "";
      if (keyOf(ev.room) !== keyOf(state.room) || state.current !== "#" + keyOf(ev.room)) {
        setRoom(ev.room);
        send("/rooms");
      }
      for (const [cls, text] of state.carried.filter(Boolean)) roomLine(cls, [[text, ""]]);
      state.carried = [];
      sendWaiting();
    }
    const ours = keyOf(ev.room) === keyOf(state.room);
    if (ours) {
      state.users = ev.names.slice();
      state.operators = (ev.operators || []).slice();
      renderUsers();
    }
    if (!ev.entered && (!ours || state.askedWho === keyOf(ev.room))) {
      state.askedWho = "";
      for (const text of whoLines(ev)) append("notice", [[text, ""]]);
    }
  },
  rooms(ev) {
    renderRooms(ev.rooms);
    if (!state.askedRooms) return;
    state.askedRooms = false;
    append("notice", [[ev.rooms.length + (ev.rooms.length === 1 ? " room:" : " rooms:"), ""]]);
    for (const room of ev.rooms) {
      append("notice", [["  #" + room.name + " (" + room.users + ")" + (room.topic ? ": " + room.topic : ""), ""]]);
    }
  },
  topic(ev) {
    if (keyOf(ev.room) === keyOf(state.room)) $("topic").textContent = ev.text;
    if (ev.setter) roomLine("notice", [[ev.setter + " set the topic: " + ev.text, ""]], 0, ev.id);
    else if (!ev.text) roomLine("notice", [["#" + ev.room + " has no topic", ""]]);
  },
  chat(ev) {
    spoke(ev.nick);
    chatLine(ev.nick, ev.text, "chat", 0, roomView(state.room), ev.id);
  },
  action(ev) {
    spoke(ev.nick);
    if (roomLine("action", [["* " + ev.nick + " " + ev.text, ""]], 0, ev.id)) unseenLine(false);
  },
  private(ev) {
    spoke(ev.sender);
    append("private", [["*" + ev.sender + "* ", "nick", ev.sender], [ev.text, ""]], 0, privateView(ev.sender));
    unseenLine(true);
  },
  private_sent(ev) {
    append("private own", [["-> *" + ev.target + "* ", "nick", ev.target], [ev.text, ""]], 0, privateView(ev.target));
  },
  joined(ev) {
    const from = ev.came_from ? " from #" + ev.came_from : "";
    roomLine("notice", [[ev.nick + " joined" + from, ""]]);
    if (!state.users.includes(ev.nick)) state.users.push(ev.nick);
    renderUsers();
  },
  left(ev) {
    const where = ev.went_to ? " for #" + ev.went_to : "";
    roomLine("notice", [[ev.nick + " left" + where + (ev.reason ? ": " + ev.reason : ""), ""]]);
    state.users = state.users.filter((n) => n !== ev.nick);
    renderUsers();
  },
  presence(ev) {
    const parts = [];
    if (ev.joined) parts.push(ev.joined + " joined");
    if (ev.left) parts.push(ev.left + " left");
    roomLine("notice", [[parts.join(", ") + " (" + ev.online + " here)", ""]]);
    send("/who");
  },
  nick(ev) {
    roomLine("notice", [[ev.old + " is now known as " + ev.new, ""]]);
    if (ev.old === state.nick) {
      state.nick = ev.new;
      tab.save(state.nick, state.room);
    }
    state.users = state.users.map((n) => (n === ev.old ? ev.new : n));
    renderUsers();
    renamePrivate(ev.old, ev.new);
  },
  history(ev) {
    const view = roomView(ev.room);
    const mine = ev.sender === state.nick ? view.mine.indexOf(ev.kind + " " + ev.text) : -1;
    if (mine >= 0) {  // shown when we sent it
      view.mine.splice(mine, 1);
      view.seen.add(ev.id);
      return;
    }
    if (ev.kind === "action") append("history", [["* " + ev.sender + " " + ev.text, ""]], ev.ts, view, ev.id);
    else if (ev.kind === "topic") append("history", [[ev.sender + " set the topic: " + ev.text, ""]], ev.ts, view, ev.id);
    else chatLine(ev.sender, ev.text, "history", ev.ts, view, ev.id);
  },
  motd(ev) {
    // The server's rules and news, as its operator wrote them, line by line.
    roomLine("notice motd", [["Message of the day:\n" + ev.lines.join("\n"), ""]]);
  },
  notice(ev) {
    if (state.newPasswords.length &&
        (ev.text === PASSWORD_CHANGED || ev.text === state.nick + NOW_REGISTERED)) {
      // Logging in again after a reconnect needs the new one.
      state.password = state.newPasswords.shift();
      if (localStorage.getItem("twchat-password")) {
        localStorage.setItem("twchat-password", state.password);
      }
    }
    if (ev.text.endsWith(TAKEN_OVER)) state.leaving = ev.text;
    append("notice", [[ev.text, ""]]);
  },
};

// Back after a lost connection, our own name may be held a few seconds
// more: by the lost connection until the server sees it gone, or, behind a
// load balancer, on the server we were on. Ask again every 2 s for 30 s
// before giving it up, as the terminal client does.
const RETRY_NICK_EVERY = 2000;
const RETRY_NICK_FOR = 30000;
const PASSING = [" is already taken", "try again shortly"];

function retryOwnNick(text) {
  if (!state.reclaimingSince || !PASSING.some((p) => text.endsWith(p))) return false;
  if (Date.now() - state.reclaimingSince >= RETRY_NICK_FOR) {
    state.reclaimingSince = 0;
    return false;
  }
  setStatus(state.nick + " is still held by the lost connection — trying again in " +
            RETRY_NICK_EVERY / 1000 + " s", "connecting");
  state.retryNick = setTimeout(() => {
    state.retryNick = null;
    if (state.ws && state.ws.readyState === WebSocket.OPEN && !state.registered) send(state.nick);
  }, RETRY_NICK_EVERY);
  return true;
}

// The server refused our last line (too long, muted, ...): its line shown
// as sent says it was not, and its words are back in the box to edit.
function unsent() {
  const typed = state.typed;
  state.typed = null;
  if (!typed) return;
  if (typed.li) {
    typed.li.classList.add("unsent");
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = " (not sent)";
    typed.li.appendChild(note);
    const at = typed.view.mine.indexOf(typed.said);
    if (at >= 0) typed.view.mine.splice(at, 1);
  }
  if (!$("line").value) $("line").value = typed.text;
}

function hideLogin() {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("sidebar").hidden = false;
  $("drawer-toggle").hidden = false;
}

function showLogin() {
  $("login").hidden = false;
  $("chat").hidden = true;
  $("sidebar").hidden = true;
  $("drawer-toggle").hidden = true;
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
    clearTimeout(state.retryNick);
    state.retryNick = null;
    if (state.registered && !state.reclaimingSince) state.reclaimingSince = Date.now();
    state.registered = false;
    if (state.leaving) {
      left();
      return;
    }
    // Reconnect with backoff, then register again with the same nickname.
    const delay = Math.min(30, 2 ** state.retry) * 1000;
    state.retry += 1;
    setStatus("disconnected — reconnecting in " + delay / 1000 + " s", "offline");
    state.reconnect = setTimeout(() => {
      state.reconnect = null;
      connect();
    }, delay);
  };
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (state.askingPassword) {
    const password = $("password").value;
    const other = $("nick").value.trim();
    if (!password && !state.registered && other && keyOf(other) !== keyOf(state.askedNick)) {
      // Another name instead: an empty answer takes the asked one back,
      // and the nickname prompt that follows gets this one.
      state.askingPassword = false;
      state.nick = other;
      $("password-row").hidden = true;
      $("login-error").textContent = "";
      send("");
      return;
    }
    if (!password && state.registered) {
      // A /nick to an account, taken back: the server says we keep our name.
      state.askingPassword = false;
      $("password-row").hidden = true;
      $("login-error").textContent = "";
      send("");
      hideLogin();
      return;
    }
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
  if (!state.ws) connect();  // joining again after /quit: the prompt sends it
  else send(nick);
});

$("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("line");
  const text = input.value;
  if (!text.trim()) return;
  const word = text.split(" ")[0].toLowerCase();
  const secret = word === "/register" || word === "/password";
  // Up gives the last line back, never one holding a password.
  state.lastLine = secret ? "" : text;
  if (secret) {
    const set = word === "/register" ? text.slice(10) : text.split(" ").slice(2).join(" ");
    if (set) state.newPasswords.push(set);
  }
  input.value = "";
  // In a private conversation what is typed goes to that person only.
  const line = state.current.startsWith("@") && !text.startsWith("/")
    ? "/msg " + state.views.get(state.current).title.slice(1) + " " + text
    : text;
  if (state.registered && state.ws && state.ws.readyState === WebSocket.OPEN) sendLine(line, text);
  else if (/^\/quit(\s|$)/i.test(text)) leaveWhileAway();
  else {
    const li = append("own waiting", [[line, ""], [" (waiting for the connection)", "note"]]);
    state.waiting.push({ line, text, li });
  }
});

// Back in our room after a reconnect: what was typed meanwhile goes out.
function sendWaiting() {
  const waiting = state.waiting;
  state.waiting = [];
  for (const { line, text, li } of waiting) {
    li.remove();
    sendLine(line, text);
  }
}

// /quit typed while there is no connection: no more attempts.
function leaveWhileAway() {
  clearTimeout(state.reconnect);
  state.reconnect = null;
  for (const { li } of state.waiting) li.remove();
  state.waiting = [];
  state.leaving = "You left the chat.";
  if (state.ws && state.ws.readyState !== WebSocket.CLOSED) {
    state.ws.close();  // its onclose shows the form
    return;
  }
  left();
}

// Back to the nickname form, saying why we left (state.leaving); no
// reconnecting.
function left() {
  tab.forget();  // a reload shows the form, as now
  state.reclaimingSince = 0;
  $("login-error").textContent = state.leaving;
  state.leaving = "";
  state.ws = null;
  setStatus("disconnected", "offline");
  showLogin();
}

// Send a line typed as ``text`` (``line``: what it became, e.g. a /msg from
// a private view) and show it as the room will see it.
function sendLine(line, text) {
  if (line !== text) {
    // The server's "->" line shows a private message.
    send(line);
    state.typed = { text, li: null };
    return;
  }
  send(text);
  state.typed = /^\/msg\s/i.test(text) ? { text, li: null } : null;
  // The server does not echo our own lines: show them as sent.
  const mine = roomView(state.room);
  const said = (kind, line, li) => {
    mine.mine.push(kind + " " + line);
    state.typed = { text, li, view: mine, said: kind + " " + line };
  };
  if (text.startsWith("//")) {
    said("chat", text.slice(1), chatLine(state.nick, text.slice(1), "own", 0, mine));
  } else if (/^\/me /i.test(text)) {
    const li = append("action own", [["* " + state.nick + " " + text.slice(4), ""]], 0, mine);
    said("action", text.slice(4), li);
  } else if (/^\/join\s+\S/i.test(text)) state.joining = text.split(/\s+/)[1];
  else if (/^\/part\b/i.test(text)) state.joining = "*";  // the default room
  else if (/^\/who(\s|$)/i.test(text)) state.askedWho = keyOf(text.split(/\s+/)[1] || state.room);
  else if (/^\/rooms\s*$/i.test(text)) state.askedRooms = true;
  else if (/^\/quit(\s|$)/i.test(text)) {
    state.leaving = "You left the chat.";
    tab.forget();  // from now: a reload before the close must not come back
  }
  else if (!text.startsWith("/")) {
    said("chat", text, chatLine(state.nick, text, "own", 0, mine));
  }
}

// Tab completes the nickname being typed, as the terminal client does:
// whoever spoke last first ("bob: " at the start of the line), Tab again
// the next. With nothing to complete, Tab moves on as anywhere else.
const speakers = [];  // most recent last, at most 100
function spoke(nick) {
  const at = speakers.indexOf(nick);
  if (at >= 0) speakers.splice(at, 1);
  speakers.push(nick);
  if (speakers.length > 100) speakers.shift();
}

let completing = null;  // { start, matches, index } while Tab is pressed again
$("line").addEventListener("input", () => { completing = null; });

function completeNick(input) {
  const end = input.selectionStart;
  if (end !== input.selectionEnd) return false;
  if (!completing) {
    const before = input.value.slice(0, end);
    const start = before.lastIndexOf(" ") + 1;
    const word = before.slice(start).toLowerCase();
    if (!word || /^\/(join|who)\s/i.test(before) || (start === 0 && word.startsWith("/"))) return false;
    const present = new Set(state.users.map(keyOf));
    const candidates = [...speakers].reverse().filter((n) => present.has(keyOf(n)))
      .concat(state.users);
    const matches = [...new Set(candidates)].filter(
      (n) => keyOf(n).startsWith(word) && keyOf(n) !== keyOf(state.nick));
    if (!matches.length) return false;
    completing = { start, matches, index: -1 };
  }
  completing.index = (completing.index + 1) % completing.matches.length;
  const name = completing.matches[completing.index];
  const text = name + (completing.start === 0 ? ": " : " ");
  const after = input.value.slice(input.selectionStart);
  input.value = input.value.slice(0, completing.start) + text + after;
  const cursor = completing.start + text.length;
  input.setSelectionRange(cursor, cursor);
  return true;
}

$("line").addEventListener("keydown", (e) => {
  if (e.key === "Tab" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
    if (completeNick(e.target)) {
      e.preventDefault();
      return;
    }
  }
  completing = null;
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

// On a phone the rooms and people are a drawer, one tap away.
$("drawer-toggle").addEventListener("click", () => document.body.classList.toggle("drawer-open"));
$("room-name").addEventListener("click", () => {
  if (state.room) show("#" + keyOf(state.room));
});

$("nick").value = localStorage.getItem("twchat-nick") || "";
connect();
