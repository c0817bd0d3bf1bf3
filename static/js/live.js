// Live workspace: one websocket per tab. Events carry ids only; the page refetches what changed through
// the normal (permission-checked) views, and refetches everything after a reconnect so nothing is missed.
(function () {
  "use strict";
  var body = document.body;
  var me = Number(body.dataset.userId);
  var socket = null;
  var retry = 1000;
  var refreshTimer = null;

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 6000);
  }

  // Replace the live regions of this page with their fresh versions (debounced: bursts cost one fetch).
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      fetch(window.location.href, { headers: { "X-Requested-With": "live" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          // Follow new entries only if the agent was reading the newest ones.
          var timeline = document.querySelector("[data-live-region='timeline']");
          var atBottom = timeline && timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
          document.querySelectorAll("[data-live-region]").forEach(function (region) {
            var replacement = fresh.querySelector('[data-live-region="' + region.dataset.liveRegion + '"]');
            if (!replacement) return;
            // Never pull a field out from under the agent's fingers (the search box sits in the views).
            if (region.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) return;
            region.replaceWith(replacement);
            // New markup carries hx-* attributes (list links, boosted forms): let htmx bind them.
            if (window.htmx) window.htmx.process(replacement);
          });
          countdowns();
          if (atBottom && window.omnideskTimelineToNewest) window.omnideskTimelineToNewest();
        });
    }, 150);
  }

  function concernsThisPage(event) {
    // The workspace shows a list beside any open conversation, and the list may show any conversation.
    if (document.querySelector("[data-live-region='conversation-list']")) return true;
    return openId === event.conversation_id;
  }

  // Collision warning: tell others we have this conversation open (and when we type), show who else has.
  function openConversationId() {
    var open = document.querySelector("[data-conversation-id]");
    return open ? Number(open.dataset.conversationId) : null;
  }
  var openId = openConversationId();
  var viewers = {};
  var lastTyping = 0;

  function say(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function showViewers() {
    var box = document.getElementById("viewers");
    if (!box) return;
    var names = Object.keys(viewers).map(function (id) {
      return viewers[id].name + (viewers[id].state === "typing" ? " is typing…" : " is viewing");
    });
    box.textContent = names.join(" · ");
    box.hidden = names.length === 0;
  }

  function onViewer(event) {
    if (event.conversation_id !== openId) return;
    var known = Boolean(viewers[event.user_id]);
    if (event.state === "left") delete viewers[event.user_id];
    else viewers[event.user_id] = { name: event.name, state: event.state };
    // A newcomer learns about us: answer their first "viewing" once (answers are not answered).
    if (!known && event.state === "viewing" && !event.reply) say({ type: "viewing", conversation_id: openId, reply: true });
    showViewers();
  }

  document.addEventListener("input", function (e) {
    if (openId === null || e.target.tagName !== "TEXTAREA") return;
    var now = Date.now();
    if (now - lastTyping > 3000) {
      lastTyping = now;
      say({ type: "typing", conversation_id: openId });
    }
  });

  function onEvent(event) {
    if (event.type === "hello") {
      if (openId !== null) say({ type: "viewing", conversation_id: openId });
      return;
    }
    if (event.type === "viewer") { onViewer(event); return; }
    if (event.type === "conversation.assigned" && event.assignee_id === me) {
      toast("Conversation #" + event.number + " was assigned to you");
    }
    if (event.type === "mention.created" && (event.notify_user_ids || []).indexOf(me) !== -1) {
      toast("You were mentioned in #" + event.number);
    }
    if (event.type === "sla.breached" || event.type === "sla.at_risk") {
      toast("SLA " + (event.type === "sla.breached" ? "breached" : "at risk") + " on #" + event.number);
    }
    if (event.conversation_id === undefined || concernsThisPage(event)) refresh();
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/workspace/");
    socket.onopen = function () {
      if (retry > 1000) refresh(); // catch up on what happened while disconnected
      retry = 1000;
      body.classList.remove("offline");
      body.dataset.live = "connected";  // (browser tests wait for this before they make news)
    };
    socket.onmessage = function (message) { onEvent(JSON.parse(message.data)); };
    socket.onclose = function (closed) {
      body.classList.add("offline");
      body.dataset.live = "offline";
      if (closed.code === 4401 || closed.code === 4403) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  // htmx swapped in another conversation: leave the old one, announce the new one.
  document.addEventListener("htmx:afterSwap", function () {
    var now = openConversationId();
    if (now === openId) return;
    if (openId !== null) say({ type: "left", conversation_id: openId });
    openId = now;
    viewers = {};
    showViewers();
    if (openId !== null) say({ type: "viewing", conversation_id: openId });
  });

  // SLA countdowns in the list: "SLA in 12m", "SLA overdue 5m".
  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.dataset.countdown);
      if (isNaN(due)) return;
      var minutes = Math.round((due - now) / 60000);
      var span = Math.abs(minutes) >= 120 ? Math.round(Math.abs(minutes) / 60) + "h" : Math.abs(minutes) + "m";
      el.textContent = minutes < 0 ? "SLA overdue " + span : "SLA in " + span;
      el.classList.toggle("overdue", minutes < 0);
      el.classList.toggle("soon", minutes >= 0 && minutes <= 30);
    });
  }
  countdowns();
  setInterval(countdowns, 30000);
  // A safety net under the websocket: if an event was ever lost (a broker restart between publish and
  // delivery), a visible page is at most a minute behind. Coming back to the tab catches up at once.
  setInterval(function () { if (!document.hidden) refresh(); }, 60000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  document.addEventListener("htmx:afterSettle", countdowns);

  var presence = document.getElementById("presence");
  if (presence) {
    presence.addEventListener("change", function () {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "presence", presence: presence.value }));
      }
    });
  }
  connect();
})();
