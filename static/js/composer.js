// Composer: reply / note tabs, canned responses by menu or "/shortcut" + Tab or space, Ctrl+Enter sends.
// The conversation pane is swapped by htmx, so everything here is bound once on `document` (delegation)
// and looks its elements up when used; code added here must do the same.
(function () {
  "use strict";

  function cannedTexts() {
    var data = document.getElementById("canned-data");
    var byShortcut = {};
    if (data) JSON.parse(data.textContent).forEach(function (c) { byShortcut[c.shortcut] = c.text; });
    return byShortcut;
  }

  function insert(box, text) {
    var start = box.selectionStart, end = box.selectionEnd;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.selectionStart = box.selectionEnd = start + text.length;
    box.focus();
  }

  function showTab(name) {
    var composer = document.querySelector("[data-composer]");
    if (!composer) return null;
    composer.querySelectorAll("[data-composer-tab]").forEach(function (tab) {
      var on = tab.dataset.composerTab === name;
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", on ? "true" : "false");
    });
    var panel = null;
    composer.querySelectorAll("[data-composer-panel]").forEach(function (p) {
      p.hidden = p.dataset.composerPanel !== name;
      if (!p.hidden) panel = p;
    });
    var box = panel && panel.querySelector("textarea");
    if (box) box.focus();
    return box;
  }
  window.omnideskComposer = { showTab: showTab };

  document.addEventListener("click", function (e) {
    var tab = e.target.closest("[data-composer-tab]");
    if (tab) showTab(tab.dataset.composerTab);
  });

  document.addEventListener("change", function (e) {
    if (e.target.id !== "canned-select") return;
    var text = cannedTexts()[e.target.value];
    var box = document.getElementById("id_reply_body");
    if (text !== undefined && box) insert(box, text);
    e.target.value = "";
  });

  document.addEventListener("keydown", function (e) {
    var box = e.target;
    if (box.tagName !== "TEXTAREA" || !box.closest("[data-composer]")) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (box.form) box.form.requestSubmit();
      return;
    }
    if (box.id !== "id_reply_body" || (e.key !== "Tab" && e.key !== " ")) return;
    var byShortcut = cannedTexts();
    var before = box.value.slice(0, box.selectionStart);
    var match = before.match(/(^|\s)\/([\w-]+)$/);
    if (!match || byShortcut[match[2]] === undefined) return;
    e.preventDefault();
    var from = box.selectionStart - match[2].length - 1;
    box.value = box.value.slice(0, from) + byShortcut[match[2]] + box.value.slice(box.selectionStart);
    box.selectionStart = box.selectionEnd = from + byShortcut[match[2]].length;
  });
})();

// Composer files and send later: name the chosen files (and flag any over the limit), and say "Schedule"
// on the send button once a time is set. Bound on `document` like the rest (the pane is swapped by htmx).
(function () {
  "use strict";

  var MAX_FILE_BYTES = 20 * 1000 * 1000;

  function showFiles(input) {
    var box = input.closest("[data-composer-files]");
    var list = box && box.querySelector("[data-composer-file-list]");
    if (!list) return;
    list.textContent = "";
    Array.prototype.forEach.call(input.files || [], function (file) {
      var item = document.createElement("li");
      item.textContent = file.name + " (" + (file.size / 1000000).toFixed(1) + " MB)";
      if (file.size > MAX_FILE_BYTES) {
        item.className = "too-big";
        item.title = "Over 20 MB: the reply will be refused";
      }
      list.appendChild(item);
    });
  }

  function labelSendButton(input) {
    var form = input.form;
    var button = form && form.querySelector("[data-send-button]");
    if (!button) return;
    button.textContent = input.value ? "Schedule reply" : "Send reply";
  }

  document.addEventListener("change", function (e) {
    if (e.target.matches("[data-composer-file-input]")) showFiles(e.target);
    if (e.target.matches("[data-send-at]")) labelSendButton(e.target);
  });
  document.addEventListener("input", function (e) {
    if (e.target.matches("[data-send-at]")) labelSendButton(e.target);
  });

  // Merging cannot be undone from the page: ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
})();

// Web chat: while the agent writes a chat reply, the visitor sees "typing" (one ping every 3 s at most).
// Only the reply box with "chat" chosen counts: an internal note must never show as typing to the customer.
(function () {
  "use strict";

  var TYPING_PING_MS = 3000;
  var lastPing = 0;

  function csrfToken(form) {
    var field = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  document.addEventListener("input", function (e) {
    var box = e.target;
    if (box.id !== "id_reply_body" || !box.form) return;
    var channel = box.form.querySelector("input[name=channel]:checked");
    var pane = box.closest("[data-number]");
    if (!channel || channel.value !== "chat" || !pane) return;
    var now = Date.now();
    if (now - lastPing < TYPING_PING_MS) return;
    lastPing = now;
    fetch("/app/chat/conversations/" + pane.dataset.number + "/typing/", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(box.form) },
    }).catch(function () { /* typing is a courtesy; a lost ping changes nothing */ });
  });
})();
