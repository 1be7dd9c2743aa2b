/* Agent console: vanilla JavaScript against /console/api (see bot/console/channel.py).
 * Every customer or agent text is put on the page with textContent, never as HTML. */
(function () {
  "use strict";

  const ROLE_RANK = { agent: 1, supervisor: 2, manager: 3 };
  const state = {
    texts: null, me: null, csrf: null, chats: [], agents: [], openId: null, openChat: null,
    events: null, cannedTimer: null, queueTimer: null, shown: new Set(),
  };
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ helpers

  function label(key, values) {
    let text = (state.texts && state.texts.labels[key]) || key;
    Object.entries(values || {}).forEach(([name, value]) => {
      text = text.split("{" + name + "}").join(String(value));
    });
    return text;
  }

  function named(group, key) {
    const names = state.texts && state.texts[group];
    return (names && names[key]) || key || "";
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([name, value]) => {
      if (value === undefined || value === null) return;
      if (name === "text") node.textContent = String(value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, String(value));
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function localTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleString("zh-CN", { hour12: false });
  }

  function notice(message, isError) {
    const node = $("notice");
    node.textContent = message ? (isError ? label("error_prefix") : "") + message : "";
    node.classList.toggle("error", Boolean(isError));
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let response;
    try {
      response = await fetch("/console/api/" + path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw { status: 0, error: label("network_error") };
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401 && path !== "login") {
      showLogin(label("session_expired"));
    }
    if (!response.ok) throw { status: response.status, error: (data && data.error) || "" };
    return data;
  }

  function failed(error) {
    notice((error && error.error) || label("network_error"), true);
  }

  function hasRole(role) {
    return state.me && ROLE_RANK[state.me.role] >= ROLE_RANK[role];
  }

  // ------------------------------------------------------------------ login

  function applyLabels() {
    document.title = label("app_title");
    document.querySelectorAll("[data-label]").forEach((node) => {
      node.textContent = label(node.dataset.label);
    });
    $("reply-box").placeholder = label("reply_placeholder");
    $("canned-search").placeholder = label("canned_search");
    $("canned-admin-search").placeholder = label("canned_search");
    $("compensation-hint").textContent = label("compensation_hint",
      { limit: state.texts.compensation_limit });
  }

  function showLogin(message) {
    stopEvents();
    state.me = null; state.csrf = null;
    $("app-view").hidden = true;
    $("login-view").hidden = false;
    document.querySelector("[data-testid=login-error]").textContent = message || "";
  }

  async function startApp(data) {
    state.me = data.agent; state.csrf = data.csrf_token;
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    document.querySelector("[data-testid=me]").textContent =
      data.agent.display_name + " · " + named("roles", data.agent.role);
    document.querySelectorAll("[data-min-role]").forEach((node) => {
      node.hidden = !hasRole(node.dataset.minRole);
    });
    showView("chats");
    await loadQueue();
    startEvents();
  }

  async function onLogin(event) {
    event.preventDefault();
    const form = event.target;
    const errorNode = document.querySelector("[data-testid=login-error]");
    errorNode.textContent = "";
    try {
      const data = await api("POST", "login", {
        username: form.username.value.trim(), password: form.password.value,
      });
      form.password.value = "";
      await startApp(data);
    } catch (error) {
      errorNode.textContent = error.status === 429 ? label("login_throttled")
        : error.status === 401 ? label("login_failed") : (error.error || label("network_error"));
    }
  }

  async function onLogout() {
    try { await api("POST", "logout"); } catch (error) { /* the session is gone either way */ }
    state.openId = null;
    showLogin("");
  }

  // ------------------------------------------------------------------ live events

  function startEvents() {
    stopEvents();
    const source = new EventSource("/console/api/events", { withCredentials: true });
    const status = document.querySelector("[data-testid=live-status]");
    source.onopen = () => { status.textContent = label("live_connected"); };
    source.onerror = () => { status.textContent = label("live_reconnecting"); };
    source.addEventListener("queue", () => scheduleQueue());
    source.addEventListener("handoff", (event) => {
      scheduleQueue();
      const data = JSON.parse(event.data);
      if (data.id === state.openId) openChat(state.openId);
    });
    source.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (state.openChat && data.sender_id === state.openChat.chat.sender_id) {
        appendEntry(data.entry);
      }
    });
    state.events = source;
  }

  function stopEvents() {
    if (state.events) state.events.close();
    state.events = null;
  }

  function scheduleQueue() {
    clearTimeout(state.queueTimer);
    state.queueTimer = setTimeout(loadQueue, 100);
  }

  // ------------------------------------------------------------------ queue

  async function loadQueue() {
    try {
      const data = await api("GET", "queue");
      state.chats = data.chats; state.agents = data.agents;
      renderQueue();
      renderTransferOptions();
    } catch (error) {
      if (error.status !== 401) failed(error);
    }
  }

  function renderQueue() {
    const list = $("queue-list");
    clear(list);
    if (!state.chats.length) {
      list.appendChild(el("li", { class: "empty", text: label("queue_empty") }));
      return;
    }
    state.chats.forEach((chat) => {
      const who = chat.customer ? chat.customer.name + " · " + named("tiers", chat.customer.tier)
        : chat.sender_id;
      const item = el("li", {
        class: "queue-item status-" + chat.status + (chat.id === state.openId ? " open" : ""),
        "data-testid": "queue-item", "data-id": chat.id, "data-status": chat.status,
        tabindex: "0",
      }, [
        el("strong", { text: who }),
        el("span", { class: "badge", text: named("handoff_statuses", chat.status) }),
        el("span", { text: named("triggers", chat.trigger) }),
        el("span", { class: "meta", text: label("priority", { value: chat.priority }) + " · "
          + label("waiting_for", { minutes: Math.floor(chat.waiting_seconds / 60) }) }),
        el("span", { class: "meta", text: chat.agent ? chat.agent.display_name : label("unassigned") }),
      ]);
      item.addEventListener("click", () => openChat(chat.id));
      item.addEventListener("keydown", (event) => { if (event.key === "Enter") openChat(chat.id); });
      list.appendChild(item);
    });
  }

  function renderTransferOptions() {
    const select = $("transfer-select");
    const current = select.value;
    clear(select);
    select.appendChild(el("option", { value: "", text: label("transfer_to") }));
    state.agents.filter((agent) => agent.id !== state.me.id && agent.role !== "manager")
      .forEach((agent) => {
        select.appendChild(el("option", {
          value: agent.id,
          text: agent.display_name + "（" + named("roles", agent.role) + " · "
            + label(agent.online ? "online" : "offline") + "）",
        }));
      });
    select.value = current;
  }

  // ------------------------------------------------------------------ chat view

  async function openChat(id) {
    state.openId = id;
    try {
      const data = await api("GET", "chats/" + id);
      if (state.openId !== id) return;
      state.openChat = data;
      renderChat();
      renderQueue();
    } catch (error) {
      failed(error);
    }
  }

  function renderChat() {
    const data = state.openChat;
    const chat = data.chat;
    $("chat-empty").hidden = true;
    $("chat-body").hidden = false;
    $("details").hidden = false;
    $("chat-title").textContent = (data.customer ? data.customer.name : chat.sender_id)
      + " · " + named("channels", chat.channel);
    $("chat-status").textContent = named("handoff_statuses", chat.status)
      + (chat.agent ? " · " + chat.agent.display_name : "");
    $("claim").hidden = chat.status !== "waiting";
    const open = chat.status === "waiting" || chat.status === "active";
    const mine = chat.agent && chat.agent.id === state.me.id;
    $("handback").disabled = !(open && (mine || hasRole("supervisor")));
    $("close-chat").disabled = !(open && (mine || hasRole("supervisor")));
    $("transfer").disabled = !(open && (mine || hasRole("supervisor")));
    $("reply-box").disabled = !data.can_reply;
    $("send").disabled = !data.can_reply;
    $("reply-hint").textContent = data.can_reply ? "" : label("read_only");

    const transcript = $("transcript");
    clear(transcript);
    state.shown = new Set();
    data.transcript.forEach(appendEntry);

    const reasons = [named("triggers", chat.trigger)]
      .concat((chat.reasons || []).map((reason) => named("reasons", reason)));
    $("reason").textContent = Array.from(new Set(reasons)).join(" · ") + " · " + label("severity", { value: chat.severity });
    $("summary").textContent = data.summary;
    renderSentiment(data.sentiment);
    renderCustomer(data.customer);
    renderPhotos(data.photos);
  }

  function appendEntry(entry) {
    // The sender's own reply arrives twice: from the send call and from the live stream.
    const key = [entry.type, entry.at, entry.text].join("|");
    if (state.shown.has(key)) return;
    state.shown.add(key);
    const transcript = $("transcript");
    const who = entry.type === "user" ? label("customer_said")
      : entry.type === "agent" ? (entry.agent || label("you"))
      : entry.type === "bot" ? label("bot") : label("system");
    const meta = [who, localTime(entry.at)];
    if (entry.intent) meta.push(entry.intent);
    if (entry.sentiment && entry.sentiment.label) meta.push(named("sentiments", entry.sentiment.label));
    const item = el("li", {
      class: "entry entry-" + entry.type, "data-testid": "transcript-entry", "data-type": entry.type,
    }, [el("span", { class: "meta", text: meta.join(" · ") })]);
    const text = entry.type === "system" ? named("system_events", entry.text) : entry.text;
    if (text) item.appendChild(el("p", { class: "text", text }));
    if (entry.image) {
      item.appendChild(el("img", { src: entry.image, alt: label("photo_alt"), loading: "lazy" }));
    }
    (entry.buttons || []).forEach((button) => {
      item.appendChild(el("span", { class: "button-chip", text: button.title }));
    });
    transcript.appendChild(item);
    transcript.scrollTop = transcript.scrollHeight;
  }

  function renderSentiment(points) {
    const list = $("sentiment");
    clear(list);
    if (!points.length) {
      list.appendChild(el("li", { class: "empty", text: label("sentiment_none") }));
      return;
    }
    points.forEach((point) => {
      const score = Math.max(0, Math.min(1, Math.abs(Number(point.score) || 0)));
      const bar = el("span", { class: "bar sentiment-" + point.label });
      bar.style.width = Math.round(10 + score * 90) + "%";
      list.appendChild(el("li", { "data-testid": "sentiment-point", "data-label": point.label }, [
        el("span", { class: "meta", text: localTime(point.at) + " " + named("sentiments", point.label) }),
        bar,
      ]));
    });
  }

  function renderCustomer(customer) {
    const box = $("customer"), orders = $("orders"), tickets = $("tickets");
    clear(box); clear(orders); clear(tickets);
    const ticketSelect = document.querySelector("[data-testid=advance-ticket]");
    clear(ticketSelect);
    if (!customer) {
      box.appendChild(el("p", { class: "empty", text: label("customer_unknown") }));
      return;
    }
    box.appendChild(el("p", { "data-testid": "customer-name", text: customer.name }));
    box.appendChild(el("p", { "data-testid": "customer-tier", "data-tier": customer.tier,
      class: "tier tier-" + customer.tier, text: named("tiers", customer.tier) }));
    box.appendChild(el("p", { text: label("phone") + " " + customer.phone_masked }));
    customer.orders.forEach((order) => {
      orders.appendChild(el("li", { text: order.order_no + " · " + named("order_statuses", order.status)
        + " · " + named("delivery_statuses", order.delivery_status) + " · " + order.items.join("、") }));
    });
    customer.tickets.forEach((ticket) => {
      tickets.appendChild(el("li", { "data-testid": "ticket-item", text: ticket.ticket_no + " · "
        + named("ticket_statuses", ticket.status) + " · " + named("ticket_categories", ticket.category)
        + " · " + ticket.summary }));
      ticketSelect.appendChild(el("option", { value: ticket.ticket_no, text: ticket.ticket_no }));
    });
  }

  function renderPhotos(photos) {
    const box = $("photos");
    clear(box);
    photos.forEach((photo) => {
      const link = el("a", { href: photo.url, target: "_blank", rel: "noopener" }, [
        el("img", { src: photo.url, alt: label("photo_alt"), title: localTime(photo.at),
          "data-testid": "photo", loading: "lazy" }),
      ]);
      box.appendChild(link);
    });
  }

  // ------------------------------------------------------------------ chat actions

  async function chatAction(path, body, confirmKey) {
    if (confirmKey && !window.confirm(label(confirmKey))) return null;
    try {
      const result = await api("POST", "chats/" + state.openId + "/" + path, body);
      notice("");
      await Promise.all([openChat(state.openId), loadQueue()]);
      return result;
    } catch (error) {
      failed(error);
      if (error.status === 409) await Promise.all([openChat(state.openId), loadQueue()]);
      return null;
    }
  }

  async function sendReply() {
    const box = $("reply-box");
    const text = box.value.trim();
    if (!text || !state.openId) return;
    $("send").disabled = true;
    try {
      const result = await api("POST", "chats/" + state.openId + "/messages", { text });
      box.value = "";
      appendEntry(result.entry);
      notice("");
    } catch (error) {
      notice(error.error || label("sending_failed"), true);
    } finally {
      $("send").disabled = !(state.openChat && state.openChat.can_reply);
    }
  }

  // ------------------------------------------------------------------ canned replies

  async function searchCanned(query, target, onPick) {
    try {
      const replies = await api("GET", "canned?q=" + encodeURIComponent(query || ""));
      clear(target);
      if (!replies.length) target.appendChild(el("li", { class: "empty", text: label("canned_empty") }));
      replies.forEach((reply) => onPick(reply, target));
    } catch (error) {
      failed(error);
    }
  }

  function cannedPickItem(reply, target) {
    const item = el("li", { "data-testid": "canned-item", "data-id": reply.id, tabindex: "0",
      title: reply.text }, [
      el("strong", { text: reply.title }),
      el("span", { class: "meta", text: reply.category + (reply.situation ? " · " + reply.situation : "") }),
    ]);
    const insert = () => {
      const box = $("reply-box");
      box.value = box.value ? box.value + "\n" + reply.text : reply.text;
      box.focus();
    };
    item.addEventListener("click", insert);
    item.addEventListener("keydown", (event) => { if (event.key === "Enter") insert(); });
    target.appendChild(item);
  }

  function cannedAdminRow(reply, target) {
    const edit = el("button", { type: "button", "data-testid": "canned-edit", text: label("canned_edit") });
    const remove = el("button", { type: "button", "data-testid": "canned-delete", text: label("canned_delete") });
    edit.addEventListener("click", () => {
      const form = $("canned-form");
      ["id", "title", "category", "situation", "text"].forEach((name) => {
        form.elements[name].value = reply[name] || "";
      });
    });
    remove.addEventListener("click", async () => {
      if (!window.confirm(label("confirm_delete"))) return;
      try { await api("DELETE", "canned/" + reply.id); loadCannedAdmin(); } catch (error) { failed(error); }
    });
    target.appendChild(el("tr", { "data-testid": "canned-row", "data-id": reply.id }, [
      el("td", { text: reply.title }), el("td", { text: reply.category }),
      el("td", { text: reply.situation || "" }), el("td", { text: reply.text }),
      el("td", {}, [edit, remove]),
    ]));
  }

  function loadCannedAdmin() {
    return searchCanned($("canned-admin-search").value, $("canned-admin-list"), cannedAdminRow);
  }

  async function saveCanned(event) {
    event.preventDefault();
    const form = event.target;
    const body = {
      title: form.title.value, category: form.category.value,
      situation: form.situation.value || null, text: form.text.value,
    };
    try {
      if (form.elements.id.value) await api("PUT", "canned/" + form.elements.id.value, body);
      else await api("POST", "canned", body);
      form.reset();
      notice(label("saved"));
      loadCannedAdmin();
    } catch (error) {
      failed(error);
    }
  }

  // ------------------------------------------------------------------ tickets, compensation

  function fillTicketSelects() {
    const category = document.querySelector("[data-testid=ticket-category]");
    clear(category);
    Object.entries(state.texts.ticket_categories).forEach(([value, text]) => {
      category.appendChild(el("option", { value, text }));
    });
    const status = document.querySelector("[data-testid=advance-status]");
    clear(status);
    Object.entries(state.texts.ticket_statuses).forEach(([value, text]) => {
      if (value !== "opened") status.appendChild(el("option", { value, text }));
    });
  }

  async function createTicket(event) {
    event.preventDefault();
    const form = event.target;
    const result = await chatAction("tickets", {
      category: form.category.value, summary: form.summary.value,
    });
    if (result) { form.reset(); notice(label("ticket_created", { ticket_no: result.ticket_no })); }
  }

  async function advanceTicket(event) {
    event.preventDefault();
    const form = event.target;
    if (!form.ticket_no.value) return;
    try {
      await api("POST", "tickets/" + encodeURIComponent(form.ticket_no.value) + "/advance", {
        status: form.status.value, note: form.note.value,
      });
      form.note.value = "";
      notice(label("saved"));
      openChat(state.openId);
    } catch (error) {
      failed(error);
    }
  }

  async function grantCompensation(event) {
    event.preventDefault();
    const form = event.target;
    const amount = form.amount.value.trim();
    const result = await chatAction("compensations", { amount, reason: form.reason.value });
    if (result) {
      form.reset();
      notice(label(result.status === "pending" ? "compensation_pending" : "compensation_granted",
        { amount }));
    }
  }

  async function loadPending() {
    const list = $("pending-list");
    try {
      const items = await api("GET", "compensations?status=pending");
      clear(list);
      if (!items.length) list.appendChild(el("tr", {}, [el("td", { text: label("compensations_empty") })]));
      items.forEach((item) => {
        const approve = el("button", { type: "button", "data-testid": "approve-button", text: label("approve") });
        const reject = el("button", { type: "button", "data-testid": "reject-button", text: label("reject") });
        const decide = (verb) => async () => {
          try { await api("POST", "compensations/" + item.id + "/" + verb); loadPending(); }
          catch (error) { failed(error); }
        };
        approve.addEventListener("click", decide("approve"));
        reject.addEventListener("click", decide("reject"));
        list.appendChild(el("tr", { "data-testid": "pending-compensation", "data-id": item.id }, [
          el("td", { text: item.ticket_no || "" }), el("td", { text: item.amount + " 元" }),
          el("td", { text: item.reason }), el("td", { text: label("requested_by") + " " + item.requested_by }),
          el("td", { text: localTime(item.created_at) }), el("td", {}, [approve, reject]),
        ]));
      });
    } catch (error) {
      failed(error);
    }
  }

  // ------------------------------------------------------------------ views and wiring

  function showView(name) {
    $("chats-view").hidden = name !== "chats";
    $("canned-view").hidden = name !== "canned";
    $("compensations-view").hidden = name !== "compensations";
    if (name === "canned") loadCannedAdmin();
    if (name === "compensations") loadPending();
  }

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", onLogout);
    document.querySelectorAll("nav [data-view]").forEach((button) => {
      button.addEventListener("click", () => showView(button.dataset.view));
    });
    $("claim").addEventListener("click", () => chatAction("claim"));
    $("transfer").addEventListener("click", () => {
      const target = Number($("transfer-select").value);
      if (target) chatAction("transfer", { agent_id: target });
    });
    $("handback").addEventListener("click", () => chatAction("handback", undefined, "confirm_handback"));
    $("close-chat").addEventListener("click", () => chatAction("close", undefined, "confirm_close"));
    $("send").addEventListener("click", sendReply);
    $("reply-box").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) sendReply();
    });
    const search = $("canned-search");
    const runSearch = () => searchCanned(search.value, $("canned-results"), cannedPickItem);
    search.addEventListener("input", () => {
      clearTimeout(state.cannedTimer);
      state.cannedTimer = setTimeout(runSearch, 200);
    });
    search.addEventListener("focus", runSearch);
    $("canned-admin-search").addEventListener("input", () => {
      clearTimeout(state.cannedTimer);
      state.cannedTimer = setTimeout(loadCannedAdmin, 200);
    });
    $("canned-form").addEventListener("submit", saveCanned);
    $("ticket-form").addEventListener("submit", createTicket);
    $("advance-form").addEventListener("submit", advanceTicket);
    $("compensation-form").addEventListener("submit", grantCompensation);
  }

  async function boot() {
    const response = await fetch("/console/texts.json", { credentials: "same-origin" });
    state.texts = await response.json();
    applyLabels();
    fillTicketSelects();
    wire();
    try {
      await startApp(await api("GET", "me"));
    } catch (error) {
      showLogin("");
    }
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
