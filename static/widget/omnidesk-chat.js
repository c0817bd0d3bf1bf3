/*
 * Omnidesk web chat widget (protocol v1: channels_app/adapters/web_chat/PROTOCOL.md).
 *
 * Loaded by /widget/<key>.js, which sets window.OmnideskChatBoot = {base, key, script, css}. Plain ES2017 and the
 * DOM, no dependencies. Everything lives in a shadow root so the host page's CSS and ours never meet, and every
 * piece of server or visitor text goes in with textContent: nothing here parses HTML.
 */
(function () {
  "use strict";

  var boot = window.OmnideskChatBoot;
  if (!boot || window.OmnideskChat || !document.body || !document.body.attachShadow) {
    if (boot && document.body && !document.body.attachShadow) console.warn("Omnidesk chat needs a newer browser.");
    return;
  }

  var BASE = String(boot.base).replace(/\/+$/, "");
  var BASE_ORIGIN = new URL(BASE).origin;
  var CHAT = BASE + "/chat/" + encodeURIComponent(boot.key);
  var STORAGE_KEY = "omnidesk-chat:" + boot.key;
  var TYPING_SEND_EVERY_MS = 3000;
  var AGENT_TYPING_SHOWN_MS = 6000;
  var ECHO_TIMEOUT_MS = 8000;
  var PING_EVERY_MS = 25000;
  var BACKOFF_MAX_MS = 30000;

  // ---------------------------------------------------------------- state
  var state = {
    config: null,
    agentsOnline: false,
    nextOpenAt: null,
    token: null,
    visitor: null,
    identity: {},          // what the page told us: user_id, user_hash, name, email, phone
    messages: [],          // confirmed and pending, in display order
    unread: 0,
    lastId: 0,
    isOpen: false,
    offlineSent: null,     // the e-mail an offline message was left for
    agentTyping: null,
    pollMs: 5000,
  };
  var socket = null;
  var socketOpen = false;  // the server said hello: sends go over the socket and polling stops
  var socketFailures = 0;
  var reconnectTimer = null;
  var pollTimer = null;
  var pingTimer = null;
  var typingTimer = null;
  var lastTypingSent = 0;
  var sessionPromise = null;
  var refused = false;

  // ---------------------------------------------------------------- storage (may be blocked in third-party frames)
  var memoryStore = {};
  function storeGet() {
    var raw;
    try { raw = window.localStorage.getItem(STORAGE_KEY); } catch (e) { raw = memoryStore[STORAGE_KEY]; }
    try { return raw ? JSON.parse(raw) : null; } catch (e) { return null; }
  }
  function storeSet(value) {
    var raw = value ? JSON.stringify(value) : null;
    try {
      if (raw) window.localStorage.setItem(STORAGE_KEY, raw); else window.localStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      if (raw) memoryStore[STORAGE_KEY] = raw; else delete memoryStore[STORAGE_KEY];
    }
  }

  // ---------------------------------------------------------------- small helpers
  function h(tag, props, children) {
    var el = document.createElement(tag);
    var name;
    props = props || {};
    for (name in props) {
      if (!Object.prototype.hasOwnProperty.call(props, name) || props[name] == null || props[name] === false) continue;
      if (name === "text") el.textContent = props[name];
      else if (name === "className") el.className = props[name];
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), props[name]);
      else el.setAttribute(name, props[name] === true ? "" : props[name]);
    }
    (children || []).forEach(function (child) { if (child) el.appendChild(child); });
    return el;
  }

  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }
  var ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  var ICON_CLOSE = "M6 6l12 12M18 6L6 18";
  var ICON_CLIP = "M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.6-5.6l-8 8a6 6 0 0 0 8.5 8.5l6.3-6.3";
  var ICON_SEND = "M3 20l18-8L3 4v6l12 2-12 2z";

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // Links and images from the server are followed only when they are plain http(s).
  function safeUrl(value) {
    if (!value) return null;
    try {
      var url = new URL(value, BASE);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) { return null; }
  }

  function formatSize(bytes) {
    if (bytes >= 1000000) return (bytes / 1000000).toFixed(1) + " MB";
    if (bytes >= 1000) return Math.round(bytes / 1000) + " kB";
    return bytes + " B";
  }

  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  var dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long" });
  var dateFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function messageTime(iso) {
    var when = new Date(iso);
    if (isNaN(when)) return "";
    var time = timeFormat.format(when);
    return sameDay(when, new Date()) ? time : dateFormat.format(when) + ", " + time;
  }

  // "We're back at 9:00 AM" in the visitor's own time zone (the browser's), with the day when it is not today.
  function backAt(iso) {
    var when = new Date(iso);
    if (!iso || isNaN(when)) return "We're away right now";
    var now = new Date();
    var tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    var time = timeFormat.format(when);
    if (sameDay(when, now)) return "We're back at " + time;
    if (sameDay(when, tomorrow)) return "We're back tomorrow at " + time;
    if (when - now < 6 * 86400000) return "We're back " + dayFormat.format(when) + " at " + time;
    return "We're back " + dateFormat.format(when) + " at " + time;
  }

  // Black or white text on the inbox colour, whichever reads better (WCAG relative luminance).
  function textOn(hex) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return luminance > 0.4 ? "#111827" : "#ffffff";
  }

  // ---------------------------------------------------------------- HTTP
  function ApiError(status, detail, data) {
    this.status = status;
    this.detail = detail;
    this.data = data || {};
  }

  function api(method, path, body, options) {
    options = options || {};
    var headers = {};
    var payload = body;
    if (state.token && !options.anonymous) headers.Authorization = "Visitor " + state.token;
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    var url = path.indexOf("http") === 0 ? path : CHAT + path;
    return fetch(url, { method: method, headers: headers, body: payload, credentials: "omit", mode: "cors" })
      .then(function (response) {
        if (response.status === 204) return {};
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok) return data;
          throw new ApiError(response.status, data.detail || "Something went wrong (" + response.status + ").", data);
        });
      }, function () {
        // A network failure, or a refusal without CORS headers (the browser hides which).
        throw new ApiError(0, "Can't reach the chat right now.");
      });
  }

  // ---------------------------------------------------------------- DOM skeleton
  var host = document.createElement("omnidesk-chat");
  // Inline so the host page's rules for unknown elements cannot move or hide us (the stylesheet does the rest).
  host.setAttribute("style", "all: initial; position: fixed; z-index: 2147483000; bottom: 0; right: 0;");
  host.setAttribute("data-state", "loading");
  var root = host.attachShadow({ mode: "open" });
  var stylesheet = h("link", { rel: "stylesheet", href: boot.css });
  var frame = h("div", { className: "odc", hidden: true });
  root.appendChild(stylesheet);
  root.appendChild(frame);

  var badge = h("span", { className: "odc-badge", "aria-hidden": "true", hidden: true });
  var launcher = h("button", {
    type: "button", className: "odc-launcher", "aria-label": "Open chat", "aria-expanded": "false",
    "aria-controls": "odc-panel", onclick: function () { if (state.isOpen) close(); else open(); },
  }, [icon(ICON_CHAT), icon(ICON_CLOSE), badge]);

  var titleEl = h("h2", { className: "odc-title", id: "odc-title" });
  var statusEl = h("p", { className: "odc-status" });
  var closeButton = h("button", {
    type: "button", className: "odc-icon-button odc-close", "aria-label": "Close chat", onclick: function () { close(); },
  }, [icon(ICON_CLOSE)]);
  var header = h("header", { className: "odc-header" }, [h("div", { className: "odc-heading" }, [titleEl, statusEl]), closeButton]);

  var greetingEl = h("p", { className: "odc-greeting" });
  var listEl = h("ol", { className: "odc-messages", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  var typingEl = h("p", { className: "odc-typing", "aria-live": "polite", hidden: true });
  var scroller = h("div", { className: "odc-scroller" }, [greetingEl, listEl, typingEl]);
  var noticeEl = h("p", { className: "odc-notice", role: "status", hidden: true });
  var footer = h("div", { className: "odc-footer" });

  var panel = h("section", {
    className: "odc-panel", id: "odc-panel", role: "dialog", "aria-labelledby": "odc-title", hidden: true,
    onkeydown: function (event) {
      if (event.key === "Escape") { event.stopPropagation(); close(); }
    },
  }, [header, scroller, noticeEl, footer]);
  frame.appendChild(panel);
  frame.appendChild(launcher);

  function notice(text) {
    noticeEl.textContent = text || "";
    noticeEl.hidden = !text;
  }

  // ---------------------------------------------------------------- composer
  var textarea = h("textarea", {
    className: "odc-input", rows: "1", "aria-label": "Message", placeholder: "Write a message…",
    oninput: onComposerInput, onkeydown: onComposerKey,
  });
  var counter = h("span", { className: "odc-counter", "aria-live": "polite", hidden: true });
  var fileInput = h("input", { type: "file", className: "odc-file-input", tabindex: "-1", "aria-hidden": "true", onchange: onFileChosen });
  var fileButton = h("button", {
    type: "button", className: "odc-icon-button odc-attach", "aria-label": "Attach a file",
    onclick: function () { fileInput.click(); },
  }, [icon(ICON_CLIP)]);
  var sendButton = h("button", { type: "submit", className: "odc-icon-button odc-send", "aria-label": "Send" }, [icon(ICON_SEND)]);
  var composer = h("form", {
    className: "odc-composer", onsubmit: function (event) { event.preventDefault(); sendFromComposer(); },
  }, [fileButton, fileInput, textarea, counter, sendButton]);

  function maxLength() { return (state.config && state.config.max_message_length) || 5000; }

  function onComposerInput() {
    var length = textarea.value.length;
    var limit = maxLength();
    counter.hidden = length < limit * 0.8;
    counter.textContent = length + " / " + limit;
    counter.classList.toggle("odc-over", length > limit);
    sendButton.disabled = length > limit;
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 120) + "px";
    if (textarea.value.trim()) sendTyping();
  }

  function onComposerKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendFromComposer();
    }
  }

  function sendTyping() {
    var now = Date.now();
    if (!state.token || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
    lastTypingSent = now;
    if (socketOpen) socket.send(JSON.stringify({ type: "typing" }));
    else api("POST", "/typing", {}).catch(function () {});
  }

  function sendFromComposer() {
    var body = textarea.value;
    if (!body.trim()) return;
    if (body.length > maxLength()) {
      notice("Messages can be at most " + maxLength() + " characters; this one has " + body.length + ".");
      return;
    }
    textarea.value = "";
    onComposerInput();
    notice("");
    queueMessage({ body: body });
  }

  function onFileChosen() {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    var config = state.config || {};
    var types = config.attachment_types || [];
    if (config.max_attachment_bytes && file.size > config.max_attachment_bytes) {
      notice(file.name + " is " + formatSize(file.size) + "; files can be at most " + formatSize(config.max_attachment_bytes) + ".");
      return;
    }
    if (types.length && !typeAllowed(file.type, types)) {
      notice("Files of this type can't be sent here. Allowed: " + types.join(", ") + ".");
      return;
    }
    notice("");
    queueMessage({ file: file });
  }

  function typeAllowed(type, allowed) {
    type = (type || "").toLowerCase();
    return allowed.some(function (pattern) {
      pattern = String(pattern).toLowerCase();
      return pattern === type || (pattern.slice(-2) === "/*" && type.indexOf(pattern.slice(0, -1)) === 0);
    });
  }

  // ---------------------------------------------------------------- sending (pending -> confirmed | failed)
  function queueMessage(draft) {
    var pending = {
      client_id: uuid(), direction: "in", body: draft.body || "", created_at: new Date().toISOString(),
      author: null, attachments: draft.file ? [{ name: draft.file.name, size: draft.file.size, content_type: draft.file.type, url: null }] : [],
      _state: "pending", _file: draft.file || null,
    };
    state.messages.push(pending);
    renderMessage(pending);
    scrollToEnd(true);
    deliver(pending);
  }

  function deliver(pending) {
    pending._state = "pending";
    pending._error = null;
    renderMessage(pending);
    ensureSession().then(function () {
      if (socketOpen && !pending._file && !pending._viaHttp) {
        socket.send(JSON.stringify({ type: "message", body: pending.body, client_id: pending.client_id }));
        // No echo in time: the same client_id over HTTP cannot make a duplicate.
        clearTimeout(pending._timer);
        pending._timer = setTimeout(function () {
          if (pending._state === "pending") { pending._viaHttp = true; deliver(pending); }
        }, ECHO_TIMEOUT_MS);
        return;
      }
      var body;
      pending._viaHttp = true;
      if (pending._file) {
        body = new FormData();
        body.append("file", pending._file, pending._file.name);
        body.append("client_id", pending.client_id);
        if (pending.body) body.append("body", pending.body);
      } else {
        body = { body: pending.body, client_id: pending.client_id };
      }
      return api("POST", "/messages", body).then(function (data) { receive(data.message); });
    }).catch(function (error) { failMessage(pending.client_id, error); });
  }

  function failMessage(clientId, error) {
    var pending = findByClientId(clientId);
    if (!pending || pending._state === "sent") return;
    clearTimeout(pending._timer);
    pending._state = "failed";
    pending._error = (error && error.detail) || "Not sent.";
    renderMessage(pending);
    var retryAfter = error && error.status === 429 && Number(error.data.retry_after);
    if (retryAfter > 0) setTimeout(function () { if (pending._state === "failed") deliver(pending); }, retryAfter * 1000);
  }

  function findByClientId(clientId) {
    if (!clientId) return null;
    for (var i = 0; i < state.messages.length; i++) {
      if (state.messages[i].client_id === clientId) return state.messages[i];
    }
    return null;
  }

  function findById(id) {
    for (var i = 0; i < state.messages.length; i++) {
      if (state.messages[i].id === id) return state.messages[i];
    }
    return null;
  }

  // A message from the server: new, a confirmation of a pending one, or one we already have.
  function receive(message) {
    if (!message || typeof message.id !== "number") return;
    var known = findById(message.id) || findByClientId(message.client_id);
    state.lastId = Math.max(state.lastId, message.id);
    if (known) {
      clearTimeout(known._timer);
      var element = known._el;
      Object.keys(known).forEach(function (k) { if (k !== "_el" && k !== "_csat") delete known[k]; });
      Object.assign(known, message, { _state: "sent", _el: element });
      renderMessage(known);
      return;
    }
    message._state = "sent";
    // Confirmed messages go before the pending ones, in id order.
    var index = state.messages.length;
    for (var i = 0; i < state.messages.length; i++) {
      var other = state.messages[i];
      if (other._state !== "sent" || other.id > message.id) { index = i; break; }
    }
    state.messages.splice(index, 0, message);
    renderMessage(message);
    if (message.direction === "out") {
      showAgentTyping(null);
      if (isReading()) markRead(); else setUnread(state.unread + 1);
    }
    scrollToEnd(message.direction === "in");
  }

  // ---------------------------------------------------------------- rendering messages
  function renderMessage(message) {
    var element = buildMessage(message);
    if (message._el && message._el.parentNode === listEl) {
      listEl.replaceChild(element, message._el);
    } else {
      var next = null;
      var index = state.messages.indexOf(message);
      for (var i = index + 1; i < state.messages.length; i++) {
        if (state.messages[i]._el && state.messages[i]._el.parentNode === listEl) { next = state.messages[i]._el; break; }
      }
      listEl.insertBefore(element, next);
    }
    message._el = element;
  }

  function buildMessage(message) {
    var mine = message.direction === "in";
    var classes = "odc-message " + (mine ? "odc-mine" : "odc-theirs") + " odc-" + message._state;
    var bubble = h("div", { className: "odc-bubble" });
    if (message.body) bubble.appendChild(h("p", { className: "odc-body", text: message.body }));
    (message.attachments || []).forEach(function (file) { bubble.appendChild(buildAttachment(file)); });
    if (message.csat) bubble.appendChild(buildCsat(message));

    var meta = h("p", { className: "odc-meta" });
    if (!mine && message.author) meta.appendChild(h("span", { className: "odc-author", text: message.author.name || "" }));
    meta.appendChild(h("time", { datetime: message.created_at, text: messageTime(message.created_at) }));
    if (message._state === "pending") meta.appendChild(h("span", { className: "odc-sending", text: "Sending…" }));
    if (message._state === "failed") {
      meta.appendChild(h("span", { className: "odc-error", role: "alert", text: "Not sent: " + message._error }));
      meta.appendChild(h("button", {
        type: "button", className: "odc-retry", text: "Retry", onclick: function () { deliver(message); },
      }));
    }

    var children = [];
    if (!mine) children.push(buildAvatar(message.author));
    children.push(h("div", { className: "odc-content" }, [bubble, meta]));
    return h("li", { className: classes, "data-id": message.id || null, "data-client-id": message.client_id || null }, children);
  }

  function buildAvatar(author) {
    var avatar = h("span", { className: "odc-avatar", "aria-hidden": "true" });
    var src = author && safeUrl(author.avatar_url);
    if (src) {
      var img = h("img", { src: src, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
      img.addEventListener("error", function () { avatar.removeChild(img); avatar.textContent = (author && author.initials) || "?"; });
      avatar.appendChild(img);
    } else {
      avatar.textContent = (author && author.initials) || "?";
    }
    return avatar;
  }

  function buildAttachment(file) {
    var url = safeUrl(file.url);
    var label = (file.name || "file") + (file.size ? " (" + formatSize(file.size) + ")" : "");
    if (!url) return h("p", { className: "odc-attachment", text: label });
    var link = h("a", { className: "odc-attachment", href: url, target: "_blank", rel: "noopener noreferrer" });
    if (/^image\/(png|jpe?g|gif|webp)$/i.test(file.content_type || "")) {
      link.classList.add("odc-thumb");
      link.setAttribute("aria-label", label);
      link.appendChild(h("img", { src: url, alt: file.name || "image", loading: "lazy", referrerpolicy: "no-referrer" }));
    } else {
      link.textContent = label;
    }
    return link;
  }

  // ---------------------------------------------------------------- satisfaction survey
  function buildCsat(message) {
    var survey = message._csat || (message._csat = { score: null, comment: "", sending: false, error: "" });
    var box = h("div", { className: "odc-csat" });
    if (message.csat.score != null) {
      box.appendChild(h("p", { className: "odc-csat-done", text: "You rated us " + message.csat.score + " out of 5. Thank you!" }));
      return box;
    }
    box.appendChild(h("p", { className: "odc-csat-question", text: "How would you rate this conversation?" }));
    var scores = h("div", { className: "odc-csat-scores", role: "group", "aria-label": "Rating from 1 (poor) to 5 (great)" });
    [1, 2, 3, 4, 5].forEach(function (score) {
      scores.appendChild(h("button", {
        type: "button", className: "odc-csat-score", text: String(score), "aria-label": score + " out of 5",
        "aria-pressed": survey.score === score ? "true" : "false",
        onclick: function () { survey.score = score; renderMessage(message); focusIn(message, ".odc-csat-comment"); },
      }));
    });
    box.appendChild(scores);
    if (survey.score != null) {
      var comment = h("textarea", {
        className: "odc-csat-comment", rows: "2", "aria-label": "Comment (optional)", placeholder: "Anything to add? (optional)",
        oninput: function () { survey.comment = comment.value; },
      });
      comment.value = survey.comment;
      box.appendChild(comment);
      box.appendChild(h("button", {
        type: "button", className: "odc-button odc-csat-send", text: survey.sending ? "Sending…" : "Send rating",
        disabled: survey.sending, onclick: function () { sendCsat(message); },
      }));
    }
    if (survey.error) box.appendChild(h("p", { className: "odc-error", role: "alert", text: survey.error }));
    return box;
  }

  function focusIn(message, selector) {
    var target = message._el && message._el.querySelector(selector);
    if (target) target.focus();
  }

  function sendCsat(message) {
    var survey = message._csat;
    var url = safeUrl(message.csat.url);
    if (!url || new URL(url).origin !== BASE_ORIGIN) { survey.error = "This survey can't be answered here."; renderMessage(message); return; }
    survey.sending = true;
    survey.error = "";
    renderMessage(message);
    var body = { score: survey.score };
    if (survey.comment.trim()) body.comment = survey.comment.trim();
    // The survey's URL carries its own token; the visitor token is not needed there.
    api("POST", url, body, { anonymous: true }).then(function () {
      message.csat = Object.assign({}, message.csat, { score: survey.score });
      survey.sending = false;
      renderMessage(message);
    }, function (error) {
      survey.sending = false;
      survey.error = error.detail;
      renderMessage(message);
    });
  }

  // ---------------------------------------------------------------- typing, unread, scrolling
  function showAgentTyping(name) {
    clearTimeout(typingTimer);
    state.agentTyping = name;
    typingEl.hidden = !name;
    typingEl.textContent = name ? name + " is typing…" : "";
    if (name) {
      typingTimer = setTimeout(function () { showAgentTyping(null); }, AGENT_TYPING_SHOWN_MS);
      scrollToEnd(false);
    }
  }

  function isReading() { return state.isOpen && document.visibilityState === "visible"; }

  function setUnread(count) {
    state.unread = Math.max(0, count | 0);
    badge.hidden = state.unread === 0;
    badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
    launcher.setAttribute("aria-label", state.isOpen ? "Close chat" :
      state.unread ? "Open chat, " + state.unread + " unread message" + (state.unread === 1 ? "" : "s") : "Open chat");
  }

  function lastAgentMessageId() {
    for (var i = state.messages.length - 1; i >= 0; i--) {
      var message = state.messages[i];
      if (message._state === "sent" && message.direction === "out") return message.id;
    }
    return null;
  }

  function markRead() {
    var upTo = lastAgentMessageId();
    setUnread(0);
    if (!state.token || upTo == null || upTo <= (state.readUpTo || 0)) return;
    state.readUpTo = upTo;
    if (socketOpen) socket.send(JSON.stringify({ type: "read", up_to: upTo }));
    else api("POST", "/read", { up_to: upTo }).catch(function () { state.readUpTo = 0; });
  }

  function scrollToEnd(force) {
    var nearEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    if (force || nearEnd) scroller.scrollTop = scroller.scrollHeight;
  }

  // ---------------------------------------------------------------- forms (pre-chat, offline)
  var FIELD_TYPES = { name: ["text", "name"], email: ["email", "email"], phone: ["tel", "tel"] };

  function field(name, label, required, value, multiline) {
    var id = "odc-field-" + name;
    var input = multiline
      ? h("textarea", { id: id, name: name, rows: "4", required: required, "aria-required": required ? "true" : null })
      : h("input", {
        id: id, name: name, type: (FIELD_TYPES[name] || ["text"])[0], autocomplete: (FIELD_TYPES[name] || [])[1] || null,
        required: required, "aria-required": required ? "true" : null,
      });
    if (value) input.value = value;
    return h("div", { className: "odc-field" }, [
      h("label", { for: id, text: label + (required ? "" : " (optional)") }),
      input,
    ]);
  }

  function formValues(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) { if (el.name) values[el.name] = el.value.trim(); });
    return values;
  }

  function known(name) { return state.identity[name] || (state.visitor && state.visitor[name]) || ""; }

  function needsPrechat() {
    var prechat = state.config && state.config.prechat;
    if (state.token || !prechat || !prechat.enabled || !(prechat.fields || []).length) return false;
    return prechat.fields.some(function (f) { return !known(f.name); }) ;
  }

  function buildPrechat() {
    var fields = state.config.prechat.fields.map(function (f) { return field(f.name, f.label || f.name, !!f.required, known(f.name)); });
    var submit = h("button", { type: "submit", className: "odc-button", text: "Start chat" });
    var error = h("p", { className: "odc-error", role: "alert", hidden: true });
    var form = h("form", {
      className: "odc-form odc-prechat", "aria-label": "Before we start",
      onsubmit: function (event) {
        event.preventDefault();
        submit.disabled = true;
        var values = formValues(form);
        Object.keys(values).forEach(function (k) { if (values[k]) state.identity[k] = values[k]; });
        ensureSession().then(function () { renderFooter(true); }, function (e) {
          submit.disabled = false;
          error.hidden = false;
          error.textContent = e.detail;
        });
      },
    }, [h("p", { className: "odc-form-intro", text: "Please tell us a little about yourself." })].concat(fields, [error, submit]));
    return form;
  }

  function buildOffline() {
    if (state.offlineSent) {
      return h("div", { className: "odc-form odc-offline-done", role: "status" }, [
        h("p", { text: "Thanks! We got your message and will reply by e-mail to " + state.offlineSent + "." }),
      ]);
    }
    var intro = (state.config && state.config.offline_message) || "We're away right now. Leave a message and we'll get back to you.";
    var submit = h("button", { type: "submit", className: "odc-button", text: "Send message" });
    var error = h("p", { className: "odc-error", role: "alert", hidden: true });
    var form = h("form", {
      className: "odc-form odc-offline", "aria-label": "Leave a message",
      onsubmit: function (event) {
        event.preventDefault();
        var values = formValues(form);
        submit.disabled = true;
        error.hidden = true;
        if (values.name) state.identity.name = values.name;
        state.identity.email = values.email;
        ensureSession().then(function () {
          return api("POST", "/offline", { name: values.name, email: values.email, body: values.body });
        }).then(function (data) {
          state.offlineSent = values.email;
          receive(data.message);
          renderFooter(true, true);
        }, function (e) {
          submit.disabled = false;
          error.hidden = false;
          error.textContent = e.detail;
        });
      },
    }, [
      h("p", { className: "odc-form-intro", text: intro }),
      h("p", { className: "odc-form-note", text: "Nobody is online to chat; the reply comes by e-mail to the address you give." }),
      field("name", "Name", false, known("name")),
      field("email", "E-mail", true, known("email")),
      field("body", "Message", true, "", true),
      error, submit,
    ]);
    return form;
  }

  var footerMode = null;
  // Rebuilt only when the mode changes (or `force`), so a presence event never wipes what the visitor typed.
  function renderFooter(moveFocus, force) {
    var mode = refused ? "refused" : !state.agentsOnline && !hasConversation() ? "offline" : needsPrechat() ? "prechat" : "composer";
    var hadFocus = footer.contains(root.activeElement);
    if (mode !== footerMode || force) {
      footerMode = mode;
      footer.textContent = "";
      if (mode === "offline") footer.appendChild(buildOffline());
      else if (mode === "prechat") footer.appendChild(buildPrechat());
      else if (mode === "composer") {
        fileInput.setAttribute("accept", ((state.config && state.config.attachment_types) || []).join(","));
        fileButton.hidden = !(state.config && state.config.max_attachment_bytes);
        footer.appendChild(composer);
      }
    }
    // Focus follows the visitor's own step, or is rescued when the form it was in went away.
    if (state.isOpen && (moveFocus || (hadFocus && !footer.contains(root.activeElement)))) focusFirst();
  }

  // A visitor already talking to us keeps the composer while agents step away; new ones get the offline form.
  function hasConversation() {
    return state.messages.some(function (m) { return m._state === "sent" && m.direction === "out"; }) && !state.offlineSent;
  }

  function focusFirst() {
    var target = footer.querySelector(".odc-input") || footer.querySelector("input, textarea, button") || closeButton;
    target.focus();
  }

  // ---------------------------------------------------------------- header
  function renderHeader() {
    var config = state.config || {};
    titleEl.textContent = config.title || "Chat with us";
    statusEl.textContent = state.agentsOnline ? "We're online" : backAt(state.nextOpenAt);
    statusEl.classList.toggle("odc-online", !!state.agentsOnline);
    greetingEl.textContent = config.greeting || "";
    greetingEl.hidden = !config.greeting;
    if (/^#[0-9a-fA-F]{6}$/.test(config.color || "")) {
      host.style.setProperty("--odc-color", config.color);
      host.style.setProperty("--odc-on-color", textOn(config.color));
    }
  }

  function applyPresence(online, nextOpenAt) {
    if (typeof online === "boolean") state.agentsOnline = online;
    if (nextOpenAt !== undefined) state.nextOpenAt = nextOpenAt;
    renderHeader();
    renderFooter(false);
  }

  // ---------------------------------------------------------------- session
  function identityPayload() {
    var payload = { visitor_token: state.token };
    ["name", "email", "phone", "user_id", "user_hash"].forEach(function (k) { if (state.identity[k]) payload[k] = state.identity[k]; });
    return payload;
  }

  function applySession(data) {
    state.token = data.visitor_token;
    state.visitor = data.visitor || null;
    storeSet({ token: state.token, user_id: state.identity.user_id || null });
    if (data.config) state.config = data.config;
    if (data.poll_interval_ms) state.pollMs = Math.max(1000, data.poll_interval_ms);
    (data.messages || []).forEach(receiveQuietly);
    setUnread(isReading() ? 0 : data.unread || 0);
    if (isReading()) markRead();
    applyPresence(data.agents_online, data.next_open_at);
    connect(data.ws_url);
  }

  // History loads without counting as new or moving the unread badge.
  function receiveQuietly(message) {
    var open = state.isOpen;
    var unread = state.unread;
    state.isOpen = false;
    receive(message);
    state.isOpen = open;
    setUnread(unread);
  }

  // The visitor exists on the server from their first message or form, not from a page view.
  // One request at a time; identify() clears sessionPromise to send new details.
  function ensureSession() {
    if (sessionPromise) return sessionPromise;
    sessionPromise = api("POST", "/session", identityPayload(), { anonymous: true }).then(function (data) {
      applySession(data);
      return data;
    }, function (error) {
      sessionPromise = null;
      // A 403 here is a refused identity (a wrong user_hash); a refused origin already failed /config.
      if (error.status !== 401) notice(error.detail);
      throw error;
    });
    return sessionPromise;
  }

  function refuse(error) {
    refused = true;
    host.setAttribute("data-state", "refused");
    frame.hidden = true;
    disconnect();
    console.error("Omnidesk chat: " + (error.detail || "this site may not use this chat") +
      " Add this page's origin (" + window.location.origin + ") to the inbox's allowed origins.");
  }

  // ---------------------------------------------------------------- live connection: websocket, polling fallback
  function connect(wsUrl) {
    if (!wsUrl || refused || socket) return;
    var opened = false;
    clearTimeout(reconnectTimer);
    if (!pollTimer) host.setAttribute("data-connection", "connecting");
    try { socket = new WebSocket(wsUrl); } catch (e) { socket = null; scheduleReconnect(wsUrl); return; }
    var current = socket;
    // A socket counts once the server's hello arrives: some proxies accept the upgrade and then pass nothing.
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (!opened && current === socket) {
        opened = true;
        socketOpen = true;
        socketFailures = 0;
        host.setAttribute("data-connection", "socket");
        stopPolling();
        clearInterval(pingTimer);
        pingTimer = setInterval(function () { if (socketOpen) socket.send(JSON.stringify({ type: "ping" })); }, PING_EVERY_MS);
        catchUp();
        resendPending();
      }
      onServerEvent(data);
    };
    socket.onclose = function (event) {
      socket = null;
      socketOpen = false;
      clearInterval(pingTimer);
      if (event.code === 4403) { refuse({ detail: "This site is not allowed to use this chat." }); return; }
      if (event.code === 4401) { forgetVisitor(); return; }
      if (!opened || event.code !== 1000) socketFailures += 1;
      startPolling();
      scheduleReconnect(wsUrl);
    };
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    stopPolling();
    if (socket) { socket.onclose = null; socket.close(1000); }
    socket = null;
    socketOpen = false;
  }

  function scheduleReconnect(wsUrl) {
    clearTimeout(reconnectTimer);
    var delay = Math.min(BACKOFF_MAX_MS, 1000 * Math.pow(2, Math.min(socketFailures, 5)));
    delay = delay / 2 + Math.random() * delay / 2;
    reconnectTimer = setTimeout(function () { connect(wsUrl); }, delay);
  }

  function onServerEvent(data) {
    if (data.type === "message") receive(data.message);
    else if (data.type === "typing") showAgentTyping(data.name || "Someone");
    else if (data.type === "presence") applyPresence(data.agents_online);
    else if (data.type === "hello") { applyPresence(data.agents_online); if (!isReading()) setUnread(data.unread); else markRead(); }
    else if (data.type === "error") {
      if (data.client_id) failMessage(data.client_id, { detail: data.detail });
      else notice(data.detail);
    }
  }

  // Messages sent while the socket was down went by HTTP; ones waiting for an echo that died with it are resent.
  function resendPending() {
    state.messages.forEach(function (m) { if (m._state === "pending" && !m._file && !m._viaHttp) deliver(m); });
  }

  function catchUp() {
    if (!state.token) return Promise.resolve();
    return api("GET", "/messages?after=" + state.lastId).then(function (data) {
      (data.messages || []).forEach(receive);
      if (!socketOpen) showAgentTyping(data.agent_typing ? data.agent_typing.name : null);
      if (!isReading() && typeof data.unread === "number") setUnread(data.unread);
      applyPresence(data.agents_online);
    }, function (error) {
      if (error.status === 401) forgetVisitor();
      if (error.status === 403) refuse(error);
    });
  }

  function startPolling() {
    if (pollTimer || refused) return;
    host.setAttribute("data-connection", "polling");
    var tick = function () {
      pollTimer = setTimeout(function () { catchUp().then(function () { if (pollTimer) tick(); }); }, state.pollMs);
    };
    catchUp();
    tick();
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  // The server no longer knows our token: start over as a new visitor (history belonged to the old one).
  function forgetVisitor() {
    disconnect();
    storeSet(null);
    state.token = null;
    state.visitor = null;
    sessionPromise = null;
    state.messages = [];
    state.lastId = 0;
    listEl.textContent = "";
    setUnread(0);
    footerMode = null;
    loadConfig();
  }

  // ---------------------------------------------------------------- open / close
  function open() {
    if (refused || host.getAttribute("data-state") !== "ready") { pendingOpen = true; return; }
    state.isOpen = true;
    panel.hidden = false;
    frame.classList.add("odc-is-open");
    launcher.setAttribute("aria-expanded", "true");
    setUnread(state.unread);
    markRead();
    scrollToEnd(true);
    focusFirst();
  }

  function close() {
    var wasOpen = state.isOpen;
    state.isOpen = false;
    pendingOpen = false;
    panel.hidden = true;
    frame.classList.remove("odc-is-open");
    launcher.setAttribute("aria-expanded", "false");
    setUnread(state.unread);
    if (wasOpen) launcher.focus();
  }

  document.addEventListener("visibilitychange", function () { if (isReading()) markRead(); });

  function identify(fields) {
    fields = fields || {};
    if (fields.user_id && state.identity.user_id && String(fields.user_id) !== String(state.identity.user_id)) {
      // Another signed-in user on this browser must not see the previous one's conversation.
      state.identity = {};
      forgetVisitor();
    }
    ["user_id", "user_hash", "name", "email", "phone"].forEach(function (k) { if (fields[k]) state.identity[k] = String(fields[k]); });
    if (state.token) {
      sessionPromise = null;
      ensureSession().catch(function () {});
    } else {
      renderFooter(false);
    }
  }

  // ---------------------------------------------------------------- start
  var pendingOpen = false;

  // Shown once our stylesheet is in (or has had its chance), so the host page never sees it unstyled.
  var stylesheetLoaded = new Promise(function (resolve) {
    stylesheet.addEventListener("load", resolve);
    stylesheet.addEventListener("error", resolve);
    setTimeout(resolve, 4000);
  });

  function ready() {
    if (refused) return;
    renderHeader();
    renderFooter(false);
    stylesheetLoaded.then(function () {
      if (refused) return;
      host.setAttribute("data-state", "ready");
      frame.hidden = false;
      if (pendingOpen) { pendingOpen = false; open(); }
    });
  }

  function loadConfig() {
    return api("GET", "/config", null, { anonymous: true }).then(function (data) {
      state.config = data.config;
      applyPresence(data.agents_online, data.next_open_at);
      ready();
    }, function (error) {
      // A not-allowed origin answers 403 (or, without CORS headers, looks like a network failure).
      if (error.status === 403 || error.status === 0) refuse(error);
      else { host.setAttribute("data-state", "error"); console.error("Omnidesk chat: " + error.detail); }
    });
  }

  function start() {
    var settings = window.OmnideskChatSettings || {};
    ["user_id", "user_hash", "name", "email", "phone"].forEach(function (k) { if (settings[k]) state.identity[k] = String(settings[k]); });
    var stored = storeGet();
    if (stored && stored.token && (stored.user_id || null) === (state.identity.user_id || null)) state.token = stored.token;
    else if (stored) storeSet(null);
    document.body.appendChild(host);
    if (!state.token) { loadConfig(); return; }
    // A returning visitor: their history, unread count and live connection, before the panel is even opened.
    // On any other failure the token is kept (it holds the history) and the session is tried again on send.
    ensureSession().then(ready, function (error) {
      if (error.status === 401) forgetVisitor();
      else loadConfig();
    });
  }

  window.OmnideskChat = { open: open, close: close, identify: identify };
  start();
})();
