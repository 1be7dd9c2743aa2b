/*
 * 售后小助手 web chat widget — plain JavaScript, no build step, no third-party code except
 * the vendored socket.io client that the assistant's own server delivers.
 *
 * Embed (one script tag; the config object is optional):
 *   <script>window.ShouhouChatConfig = { title: "售后小助手", language: "zh-CN",
 *     colors: { primary: "#c8102e", primaryText: "#ffffff" } };</script>
 *   <script src="https://assistant.example.com/widget/widget.js" defer></script>
 *
 * Safety rule of this file: text from the bot, an agent or the customer only ever reaches the
 * page through textContent or validated http(s) URLs; innerHTML is never used.
 */
(function () {
  "use strict";

  if (window.ShouhouChat) {
    return; // embedded twice: keep the first one
  }

  var script = document.currentScript;
  var userConfig = window.ShouhouChatConfig || {};
  var serverUrl = String(
    userConfig.serverUrl || (script && script.src ? new URL(script.src).origin : location.origin)
  ).replace(/\/+$/, "");
  var language = String(userConfig.language || document.documentElement.lang || "zh-CN");
  var storageKey = "shouhou-chat:" + serverUrl;
  var MAX_HISTORY = 200;
  var TYPING_TIMEOUT_MS = 30000;

  var texts = {};
  var upload = { max_bytes: 0, types: [] };
  var socket = null;
  var confirmed = false;
  var state = loadState();
  var ui = {};
  var typingTimer = null;
  var activeReplies = [];
  var socketPath = "/socket.io";
  var transports = ["polling", "websocket"];

  // ---------------------------------------------------------------- storage

  function loadState() {
    var empty = { sessionId: null, history: [], open: false, unread: 0 };
    try {
      var saved = JSON.parse(localStorage.getItem(storageKey) || "null");
      if (saved && Array.isArray(saved.history)) {
        return {
          sessionId: typeof saved.sessionId === "string" ? saved.sessionId : null,
          history: saved.history,
          open: !!saved.open,
          unread: Number(saved.unread) || 0,
        };
      }
    } catch (error) {
      // unreadable storage: start a fresh conversation
    }
    return empty;
  }

  function saveState() {
    state.history = state.history.slice(-MAX_HISTORY);
    try {
      localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (error) {
      state.history = state.history.slice(-Math.floor(MAX_HISTORY / 4));
      try {
        localStorage.setItem(storageKey, JSON.stringify(state));
      } catch (ignored) {
        // private mode or full storage: the chat still works, it just won't survive a reload
      }
    }
  }

  // ---------------------------------------------------------------- small helpers

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  /** An absolute http(s) URL (relative ones resolve against the server), or null. */
  function safeUrl(raw) {
    if (typeof raw !== "string" || !raw) return null;
    try {
      var url = new URL(raw, serverUrl + "/");
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function isColor(value) {
    return typeof value === "string" && window.CSS && CSS.supports("color", value);
  }

  function formatTime(ms) {
    var moment = new Date(ms);
    var now = new Date();
    var pad = function (n) {
      return (n < 10 ? "0" : "") + n;
    };
    var clock = pad(moment.getHours()) + ":" + pad(moment.getMinutes());
    if (moment.toDateString() === now.toDateString()) return clock;
    return moment.getMonth() + 1 + "/" + moment.getDate() + " " + clock;
  }

  function newId() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  // ---------------------------------------------------------------- text with links

  var LINK = /https?:\/\/[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+/g;

  /** Appends text to `parent`, turning http(s) URLs into links; everything stays text. */
  function appendRichText(parent, text) {
    var value = String(text);
    var last = 0;
    var match;
    LINK.lastIndex = 0;
    while ((match = LINK.exec(value)) !== null) {
      var raw = match[0].replace(/[.,;:!?)\]]+$/, "");
      var href = safeUrl(raw);
      if (match.index > last) parent.appendChild(document.createTextNode(value.slice(last, match.index)));
      if (href) {
        var link = el("a", "shc-link", raw);
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        parent.appendChild(link);
      } else {
        parent.appendChild(document.createTextNode(raw));
      }
      last = match.index + raw.length;
      LINK.lastIndex = last;
    }
    if (last < value.length) parent.appendChild(document.createTextNode(value.slice(last)));
  }

  // ---------------------------------------------------------------- rendering

  function buildUi() {
    var root = el("div", "shc-root");
    root.setAttribute("data-position", userConfig.position === "left" ? "left" : "right");
    var colors = userConfig.colors || {};
    if (isColor(colors.primary)) root.style.setProperty("--shc-primary", colors.primary);
    if (isColor(colors.primaryText)) root.style.setProperty("--shc-primary-text", colors.primaryText);
    if (isColor(colors.background)) root.style.setProperty("--shc-background", colors.background);

    var launcher = el("button", "shc-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-label", texts.open_chat);
    launcher.appendChild(el("span", "shc-launcher-icon"));
    var badge = el("span", "shc-badge");
    badge.hidden = true;
    launcher.appendChild(badge);

    var panel = el("section", "shc-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", userConfig.title || texts.title);

    var header = el("header", "shc-header");
    var heading = el("div", "shc-heading");
    heading.appendChild(el("div", "shc-title", userConfig.title || texts.title));
    var status = el("div", "shc-status", texts.status_connecting);
    heading.appendChild(status);
    var minimise = el("button", "shc-minimise");
    minimise.type = "button";
    minimise.setAttribute("aria-label", texts.minimise);
    minimise.title = texts.minimise;
    header.appendChild(heading);
    header.appendChild(minimise);

    var messages = el("div", "shc-messages");
    messages.setAttribute("role", "log");
    messages.setAttribute("aria-live", "polite");

    var typing = el("div", "shc-typing");
    typing.setAttribute("aria-label", texts.typing);
    typing.appendChild(el("span", "shc-typing-label", texts.typing));
    for (var i = 0; i < 3; i++) typing.appendChild(el("span", "shc-dot"));
    typing.hidden = true;

    var form = el("form", "shc-composer");
    var attach = el("button", "shc-attach");
    attach.type = "button";
    attach.title = texts.attach;
    attach.setAttribute("aria-label", texts.attach);
    var file = el("input", "shc-file");
    file.type = "file";
    file.accept = upload.types.join(",");
    file.hidden = true;
    var input = el("input", "shc-input");
    input.type = "text";
    input.maxLength = 1000;
    input.placeholder = texts.placeholder;
    input.setAttribute("aria-label", texts.placeholder);
    input.autocomplete = "off";
    var send = el("button", "shc-send", texts.send);
    send.type = "submit";
    form.appendChild(attach);
    form.appendChild(file);
    form.appendChild(input);
    form.appendChild(send);

    panel.appendChild(header);
    panel.appendChild(messages);
    panel.appendChild(typing);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(root);

    launcher.addEventListener("click", function () {
      setOpen(!state.open);
    });
    minimise.addEventListener("click", function () {
      setOpen(false);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      sendText(text, text);
    });
    attach.addEventListener("click", function () {
      file.click();
    });
    file.addEventListener("change", function () {
      if (file.files && file.files[0]) sendPhoto(file.files[0]);
      file.value = "";
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && state.open) setOpen(false);
    });

    ui = {
      root: root,
      launcher: launcher,
      badge: badge,
      panel: panel,
      status: status,
      messages: messages,
      typing: typing,
      input: input,
    };
  }

  function setOpen(open) {
    state.open = open;
    if (open) state.unread = 0;
    saveState();
    ui.root.classList.toggle("shc-open", open);
    ui.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    renderBadge();
    if (open) {
      scrollToEnd();
      ui.input.focus();
    }
  }

  function renderBadge() {
    ui.badge.hidden = state.unread <= 0;
    ui.badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
  }

  function setStatus(key) {
    ui.status.textContent = texts[key];
    ui.root.setAttribute("data-connection", key);
  }

  function scrollToEnd() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function renderEntry(entry, answered) {
    var row = el("div", "shc-row shc-from-" + (entry.from === "user" ? "user" : entry.from === "system" ? "system" : "bot"));
    row.setAttribute("data-id", entry.id);
    var bubble = el("div", entry.text ? "shc-bubble" : "shc-bubble shc-bubble-image");
    if (entry.text) {
      var body = el("div", "shc-text");
      appendRichText(body, entry.text);
      bubble.appendChild(body);
    }
    var src = safeUrl(entry.image);
    if (src) {
      var frame = el("a", "shc-image-link");
      frame.href = src;
      frame.target = "_blank";
      frame.rel = "noopener noreferrer";
      var image = el("img", "shc-image");
      image.alt = texts.image_alt;
      image.loading = "lazy";
      image.src = src;
      image.addEventListener("load", scrollToEnd);
      frame.appendChild(image);
      bubble.appendChild(frame);
    } else if (entry.image) {
      bubble.appendChild(el("div", "shc-text", texts.link_blocked));
    }
    row.appendChild(bubble);
    var meta = el("div", "shc-meta", formatTime(entry.ts));
    if (entry.pending) meta.appendChild(el("span", "shc-pending", " · " + texts.queued));
    row.appendChild(meta);
    ui.messages.appendChild(row);

    if (entry.from === "user") {
      // the customer moved on: earlier choices no longer apply
      activeReplies.forEach(disableReplies);
      activeReplies = [];
    }
    if (entry.buttons && entry.buttons.length) {
      var replies = el("div", "shc-replies");
      entry.buttons.forEach(function (button) {
        var choice = el("button", "shc-reply", button.title);
        choice.type = "button";
        choice.addEventListener("click", function () {
          sendText(button.payload, button.title);
        });
        replies.appendChild(choice);
      });
      ui.messages.appendChild(replies);
      if (answered) disableReplies(replies);
      else activeReplies.push(replies);
    }
  }

  function disableReplies(group) {
    group.classList.add("shc-replies-used");
    Array.prototype.forEach.call(group.querySelectorAll("button"), function (button) {
      button.disabled = true;
    });
  }

  function renderHistory() {
    ui.messages.textContent = "";
    activeReplies = [];
    var lastUser = -1;
    state.history.forEach(function (entry, index) {
      if (entry.from === "user") lastUser = index;
    });
    state.history.forEach(function (entry, index) {
      renderEntry(entry, index < lastUser);
    });
    scrollToEnd();
  }

  function addEntry(entry) {
    entry.id = entry.id || newId();
    entry.ts = entry.ts || Date.now();
    state.history.push(entry);
    if (entry.from !== "user" && !state.open) state.unread += 1;
    saveState();
    renderEntry(entry, false);
    renderBadge();
    scrollToEnd();
    return entry;
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    ui.typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () {
        ui.typing.hidden = true;
      }, TYPING_TIMEOUT_MS);
      scrollToEnd();
    }
  }

  // ---------------------------------------------------------------- conversation

  /** Shows `shown` and sends `payload`; while offline it waits (marked as queued) for the
   * next session_confirm, even across a reload, because pending entries are stored. */
  function sendText(payload, shown) {
    addEntry({ from: "user", text: shown, payload: payload, pending: true });
    flushPending();
  }

  function flushPending() {
    if (!socket || !socket.connected || !confirmed || !state.sessionId) return;
    var sent = false;
    state.history.forEach(function (entry) {
      if (entry.from === "user" && entry.pending) {
        socket.emit("user_uttered", {
          message: entry.payload !== undefined ? entry.payload : entry.text,
          session_id: state.sessionId,
        });
        entry.pending = false;
        var pendingNote = ui.messages.querySelector('[data-id="' + entry.id + '"] .shc-pending');
        if (pendingNote) pendingNote.remove();
        sent = true;
      }
    });
    if (sent) {
      saveState();
      showTyping(true);
    }
  }

  function receive(message) {
    if (!message || typeof message !== "object") return;
    showTyping(false);
    var entry = { from: "bot" };
    if (typeof message.text === "string") entry.text = message.text;
    var choices = message.quick_replies || message.buttons || [];
    if (Array.isArray(choices) && choices.length) {
      entry.buttons = choices
        .filter(function (c) {
          return c && typeof c.title === "string";
        })
        .map(function (c) {
          return { title: c.title, payload: typeof c.payload === "string" ? c.payload : c.title };
        });
    }
    var attachment = message.attachment;
    if (attachment && attachment.type === "image" && attachment.payload) {
      entry.image = String(attachment.payload.src || "");
    } else if (typeof message.image === "string") {
      entry.image = message.image;
    }
    if (entry.text || entry.image || (entry.buttons && entry.buttons.length)) addEntry(entry);
  }

  function connect() {
    socket = window.io(serverUrl, { path: socketPath, transports: transports });
    setStatus("status_connecting");
    socket.on("connect", function () {
      confirmed = false;
      socket.emit("session_request", { session_id: state.sessionId });
    });
    socket.on("session_confirm", function (data) {
      var id = typeof data === "string" ? data : data && data.session_id;
      if (typeof id !== "string" || !id) return;
      state.sessionId = id;
      confirmed = true;
      saveState();
      setStatus("status_online");
      flushPending();
    });
    socket.on("bot_uttered", receive);
    socket.on("disconnect", function () {
      confirmed = false;
      setStatus("status_offline");
    });
    socket.io.on("reconnect_attempt", function () {
      setStatus("status_offline");
    });
    api.socket = socket;
  }

  // ---------------------------------------------------------------- photos

  function errorText(key) {
    return fill(texts.errors[key] || texts.errors.upload_failed, {
      max_mb: Math.floor(upload.max_bytes / (1024 * 1024)),
    });
  }

  function sendPhoto(file) {
    if (upload.types.indexOf(file.type) === -1) {
      addEntry({ from: "system", text: errorText("not_image") });
      return;
    }
    if (file.size > upload.max_bytes) {
      addEntry({ from: "system", text: errorText("too_large") });
      return;
    }
    if (!state.sessionId || !confirmed) {
      addEntry({ from: "system", text: errorText("missing_session") });
      return;
    }
    var progress = el("div", "shc-row shc-from-system shc-uploading", texts.uploading);
    ui.messages.appendChild(progress);
    scrollToEnd();
    var body = new FormData();
    body.append("file", file);
    body.append("session_id", state.sessionId);
    body.append("language", language);
    fetch(serverUrl + "/widget/upload", { method: "POST", body: body })
      .then(function (reply) {
        return reply.json().then(function (data) {
          return { ok: reply.ok, data: data };
        });
      })
      .then(function (result) {
        progress.remove();
        if (!result.ok) {
          addEntry({ from: "system", text: result.data.message || errorText("upload_failed") });
          return;
        }
        var src = result.data.url + "?session_id=" + encodeURIComponent(state.sessionId);
        addEntry({ from: "user", image: serverUrl + src });
        addEntry({ from: "bot", text: result.data.message });
      })
      .catch(function () {
        progress.remove();
        addEntry({ from: "system", text: errorText("upload_failed") });
      });
  }

  // ---------------------------------------------------------------- start-up

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = src;
      tag.async = true;
      tag.onload = resolve;
      tag.onerror = reject;
      document.head.appendChild(tag);
    });
  }

  function loadStyles() {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = serverUrl + "/widget/widget.css";
    document.head.appendChild(link);
  }

  function loadConfig() {
    return fetch(serverUrl + "/widget/config.json?lang=" + encodeURIComponent(language)).then(
      function (reply) {
        if (!reply.ok) throw new Error("config " + reply.status);
        return reply.json();
      }
    );
  }

  function start(config) {
    texts = Object.assign({}, config.texts, userConfig.texts || {});
    texts.errors = Object.assign({}, config.texts.errors, (userConfig.texts || {}).errors || {});
    upload = config.upload;
    socketPath = config.socket_path || socketPath;
    transports = config.transports || transports;
    buildUi();
    if (!state.history.length) greet();
    renderHistory();
    setOpen(state.open || userConfig.open === true);
    connect();
    ui.root.setAttribute("data-ready", "true");
  }

  /** The local welcome line: not counted as unread, the customer has not been answered yet. */
  function greet() {
    state.history.push({ id: newId(), ts: Date.now(), from: "bot", text: texts.welcome });
    saveState();
  }

  var api = {
    socket: null,
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
    send: function (text) {
      sendText(String(text), String(text));
    },
    /** Forget this conversation (history and session id) and start a new one. */
    reset: function () {
      state = { sessionId: null, history: [], open: state.open, unread: 0 };
      saveState();
      if (socket) socket.disconnect();
      greet();
      renderHistory();
      connect();
    },
  };
  window.ShouhouChat = api;

  function boot(attempt) {
    Promise.all([
      loadConfig(),
      window.io ? Promise.resolve() : loadScript(serverUrl + "/widget/vendor/socket.io.min.js"),
    ])
      .then(function (results) {
        start(results[0]);
      })
      .catch(function () {
        // the assistant is not reachable yet: try again quietly, with growing pauses
        setTimeout(function () {
          boot(attempt + 1);
        }, Math.min(30000, 2000 * (attempt + 1)));
      });
  }

  loadStyles();
  if (document.body) boot(0);
  else document.addEventListener("DOMContentLoaded", function () {
    boot(0);
  });
})();
