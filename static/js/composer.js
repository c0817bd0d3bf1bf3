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
