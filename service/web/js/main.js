// The page's shell: the WebSocket, the timers, the URL and the browser's online/offline
// events, wired to the Session (the model) and the View (drawing). Everything that decides
// anything lives in session.js and board.js; this file only carries it out.

import { Follows } from "./follows.js";
import { Session } from "./session.js";
import { loadDelaySecs, saveDelaySecs } from "./spoiler.js";
import { View } from "./view.js";

const WIDE = window.matchMedia("(min-width: 1100px)");

/** Why a socket closed, in a fan's words, from its close code. */
function closeReason(event) {
  switch (event.code) {
    case 1000:
      return "closed";
    case 1001:
      return "the server restarted";
    case 1013:
      return "the connection was too slow to keep up";
    case 1006:
      return "the connection dropped";
    default:
      return event.reason || `closed (${event.code})`;
  }
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const session = new Session({ delaySecs: loadDelaySecs(storage()) });
const follows = new Follows(storage());
const ui = { filter: "all", sport: "all", open: null, wide: WIDE.matches };
let socket = null;
let renderQueued = false;
let timer = null;
let lastOpen = null;

const view = new View(
  {
    connection: document.getElementById("connection"),
    banner: document.getElementById("banner"),
    sportTabs: document.getElementById("sport-tabs"),
    toolbar: document.getElementById("toolbar"),
    sidebar: document.getElementById("sidebar"),
    board: document.getElementById("board"),
    detail: document.getElementById("detail"),
    streamSync: document.getElementById("stream-sync"),
    announcer: document.getElementById("announcer"),
  },
  {
    retryNow: () => {
      session.start(Date.now());
      carryOut();
    },
    setSport: (sport) => {
      ui.sport = sport;
      scheduleRender();
    },
    setFilter: (filter) => {
      ui.filter = filter;
      scheduleRender();
    },
    toggleTeam: (sport, team) => {
      follows.toggleTeam(sport, team);
      scheduleRender();
    },
    toggleCompetition: (topic, name) => {
      follows.toggleCompetition(topic, name);
      scheduleRender();
    },
    setDelay: (secs) => {
      saveDelaySecs(storage(), session.setDelay(secs, Date.now()));
      carryOut();
    },
    closeMatch: () => {
      if (history.state?.scorelineOpened) history.back();
      else location.hash = "#/";
    },
  },
);

function websocketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

/** Carries out the session's queued actions on the socket. */
function carryOut() {
  for (const action of session.takeActions()) {
    if (action.type === "connect") connect();
    else if (action.type === "disconnect") disconnect();
    else if (action.type === "send" && socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(action.message));
  }
  scheduleTick();
  scheduleRender();
}

function connect() {
  disconnect();
  const current = new WebSocket(websocketUrl());
  socket = current;
  // Handlers check they still belong to the current socket: a late event of an old one is noise.
  current.onopen = () => {
    if (socket !== current) return;
    session.opened(Date.now());
    carryOut();
  };
  current.onmessage = (message) => {
    if (socket !== current) return;
    if (typeof message.data !== "string") {
      session.ignoredFrames += 1;
      return;
    }
    session.receiveText(message.data, Date.now());
    view.announce(session.takeNotices(), Date.now());
    carryOut();
  };
  current.onclose = (event) => {
    if (socket !== current) return;
    socket = null;
    session.lost(Date.now(), closeReason(event));
    carryOut();
  };
}

function disconnect() {
  if (!socket) return;
  const old = socket;
  socket = null;
  old.onopen = old.onmessage = old.onclose = null;
  if (old.readyState === WebSocket.CONNECTING || old.readyState === WebSocket.OPEN) old.close(1000, "reconnecting");
}

/** Ticks the session when it next has something to do, and the clocks once a second. */
function scheduleTick() {
  clearTimeout(timer);
  const retryIn = session.link.retryInMs(Date.now());
  const delay = retryIn === null ? 1000 - (Date.now() % 1000) + 5 : Math.min(retryIn, 1000 - (Date.now() % 1000) + 5);
  timer = setTimeout(() => {
    session.tick(Date.now());
    if (View.needsTicking(session)) session.version += 1;
    carryOut();
  }, Math.max(delay, 10));
}

let renderedVersion = -1;
let renderedUi = "";
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const uiKey = JSON.stringify(ui) + follows.teams.size + follows.competitions.size;
    if (renderedVersion === session.version && renderedUi === uiKey) return;
    renderedVersion = session.version;
    renderedUi = uiKey;
    view.render(session, follows, ui, Date.now());
    if (ui.open && ui.open !== lastOpen && !ui.wide) document.getElementById("detail-heading")?.focus({ preventScroll: true });
    lastOpen = ui.open;
    document.body.classList.toggle("detail-open", Boolean(ui.open));
    document.getElementById("matches").inert = Boolean(ui.open) && !ui.wide;
  });
}

/** `#/match/<topic>` opens a match; anything else shows the list. */
function readHash() {
  const match = /^#\/match\/([a-z0-9/-]+)$/.exec(location.hash);
  const open = match ? match[1] : null;
  if (open !== ui.open) {
    const closing = ui.open && !open;
    const previous = ui.open;
    ui.open = open;
    session.watch(open);
    carryOut();
    if (closing) {
      // Back on the list, focus returns to the row the fan came from.
      requestAnimationFrame(() => document.querySelector(`[data-match="${CSS.escape(previous)}"]`)?.focus({ preventScroll: false }));
    }
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a.row");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  const hash = link.getAttribute("href");
  if (location.hash === hash) return;
  history.pushState({ scorelineOpened: true }, "", hash);
  readHash();
});
window.addEventListener("hashchange", readHash);
window.addEventListener("popstate", readHash);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.open) view.actions.closeMatch();
});
WIDE.addEventListener("change", () => {
  ui.wide = WIDE.matches;
  scheduleRender();
});
window.addEventListener("offline", () => {
  session.stop("you are offline");
  carryOut();
});
window.addEventListener("online", () => {
  session.start(Date.now());
  carryOut();
});
document.addEventListener("visibilitychange", () => {
  // A phone that slept may hold a dead socket or a long backoff: try at once when looked at.
  if (document.visibilityState === "visible" && session.link.state.name === "waiting") {
    session.start(Date.now());
    carryOut();
  }
});

// For people debugging in the console; nothing in the page reads it.
window.scoreline = { session, follows };

readHash();
if (navigator.onLine === false) session.stop("you are offline");
else session.start(Date.now());
carryOut();
