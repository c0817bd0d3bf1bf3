// Composer: canned responses by menu or by typing "/shortcut" followed by Tab or space.
(function () {
  "use strict";
  var data = document.getElementById("canned-data");
  var box = document.getElementById("id_reply_body");
  if (!data || !box) return;
  var canned = JSON.parse(data.textContent);
  var byShortcut = {};
  canned.forEach(function (c) { byShortcut[c.shortcut] = c.text; });

  function insert(text) {
    var start = box.selectionStart, end = box.selectionEnd;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.selectionStart = box.selectionEnd = start + text.length;
    box.focus();
  }

  var select = document.getElementById("canned-select");
  if (select) {
    select.addEventListener("change", function () {
      if (byShortcut[select.value] !== undefined) insert(byShortcut[select.value]);
      select.value = "";
    });
  }

  box.addEventListener("keydown", function (e) {
    if (e.key !== "Tab" && e.key !== " ") return;
    var before = box.value.slice(0, box.selectionStart);
    var match = before.match(/(^|\s)\/([\w-]+)$/);
    if (!match || byShortcut[match[2]] === undefined) return;
    e.preventDefault();
    var from = box.selectionStart - match[2].length - 1;
    box.value = box.value.slice(0, from) + byShortcut[match[2]] + box.value.slice(box.selectionStart);
    box.selectionStart = box.selectionEnd = from + byShortcut[match[2]].length;
  });
})();
