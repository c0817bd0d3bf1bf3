// Keyboard shortcuts for the workspace (see the "?" dialog): list navigation, composer, status actions.
(function () {
  "use strict";

  function typing(target) {
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  function items() { return Array.prototype.slice.call(document.querySelectorAll(".conv-list li.conv")); }

  function move(step) {
    var list = items();
    if (!list.length) return;
    var at = list.findIndex(function (li) { return li.classList.contains("focused"); });
    if (at === -1) at = list.findIndex(function (li) { return li.classList.contains("selected"); });
    var next = list[Math.max(0, Math.min(list.length - 1, at + step))];
    list.forEach(function (li) { li.classList.remove("focused"); });
    next.classList.add("focused");
    next.scrollIntoView({ block: "nearest" });
  }

  function press(shortcut) {
    var button = document.querySelector('#conversation-pane [data-shortcut="' + shortcut + '"]');
    if (!button) return false;
    if (button.tagName === "SUMMARY") {
      button.parentElement.open = true;
      var input = button.parentElement.querySelector("input:not([type=hidden])");
      if (input) input.focus();
    } else {
      button.click();
    }
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      if (typing(e.target)) e.target.blur();
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    var handled = true;
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": {
        var focused = document.querySelector(".conv-list li.focused a.conv-open");
        if (focused) focused.click(); else handled = false;
        break;
      }
      case "/": { var search = document.getElementById("search-box"); if (search) search.focus(); break; }
      case "r": handled = Boolean(window.omnideskComposer && window.omnideskComposer.showTab("reply")); break;
      case "n": handled = Boolean(window.omnideskComposer && window.omnideskComposer.showTab("note")); break;
      case "?": { var help = document.getElementById("shortcuts-help"); if (help) help.showModal(); break; }
      case "a": case "e": case "p": case "s": case "o": handled = press(e.key); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  // A conversation opens at its newest entry.
  function toNewest() {
    var timeline = document.querySelector("#conversation-pane .timeline");
    if (timeline) timeline.scrollTop = timeline.scrollHeight;
  }
  window.omnideskTimelineToNewest = toNewest;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", toNewest); else toNewest();

  // The list marks the conversation open in the pane, also after htmx swapped the pane.
  document.addEventListener("htmx:afterSwap", function () {
    toNewest();
    var pane = document.getElementById("conversation-pane");
    var number = pane && pane.dataset.number;
    items().forEach(function (li) {
      var open = li.dataset.number === number;
      li.classList.toggle("selected", open);
      if (open) {  // opening it read it (the server noted that); the list shows so without refetching
        li.classList.remove("unread");
        var dot = li.querySelector(".unread-dot");
        if (dot) dot.remove();
      }
    });
  });
})();
