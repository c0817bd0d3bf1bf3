// Live overview: a websocket says "something changed"; the tiles and the board are refetched through the
// permission-checked view (htmx, on the "analytics-changed" event). A burst of events costs one refetch per
// second at most, and the last event of a burst always gets its refetch.
(function () {
  "use strict";
  var QUIET_MS = 1000;
  var socket = null;
  var retry = 1000;
  var pending = null;
  var state = document.querySelector("[data-live-state]");

  function show(text, live) {
    if (state) state.textContent = text;
    document.body.dataset.analyticsLive = live;  // (browser tests wait for "connected" before they make news)
  }

  function refreshSoon() {
    if (pending !== null) return;
    pending = setTimeout(function () {
      pending = null;
      document.body.dispatchEvent(new CustomEvent("analytics-changed"));
    }, QUIET_MS);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/analytics/");
    socket.onopen = function () {
      if (retry > 1000) refreshSoon();  // catch up on what happened while disconnected
      retry = 1000;
      show("Live", "connected");
    };
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (data.type === "changed") refreshSoon();
    };
    socket.onclose = function (closed) {
      show("Reconnecting… (figures refresh every 30 s meanwhile)", "offline");
      if (closed.code === 4401 || closed.code === 4403) { show("Not connected: sign in again", "offline"); return; }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  // Coming back to a hidden tab: the figures may be minutes old.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refreshSoon();
  });

  connect();
})();
