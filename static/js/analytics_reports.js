// Reports: draw the trend charts (Chart.js, vendored) from the figures the page embeds; a click on a day
// opens the conversations behind that day's first series.
(function () {
  "use strict";
  var source = document.getElementById("report-charts");
  if (!source || !window.Chart) return;
  var charts = JSON.parse(source.textContent);
  var COLORS = ["#2f6fed", "#12b76a", "#f79009", "#b42318"];

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var total = Math.max(0, Math.round(seconds));
    if (total < 60) return total + "s";
    var minutes = Math.floor(total / 60), secs = total % 60;
    if (minutes < 60) return minutes + "m " + String(secs).padStart(2, "0") + "s";
    var hours = Math.floor(minutes / 60); minutes = minutes % 60;
    if (hours < 24) return hours + "h " + String(minutes).padStart(2, "0") + "m";
    return Math.floor(hours / 24) + "d " + String(hours % 24).padStart(2, "0") + "h";
  }

  function formatter(unit) {
    if (unit === "seconds") return duration;
    if (unit === "ratio") return function (v) { return v === null ? "–" : Math.round(v * 100) + "%"; };
    if (unit === "score") return function (v) { return v === null ? "–" : v.toFixed(2); };
    return function (v) { return v === null ? "–" : v.toLocaleString(); };
  }

  charts.forEach(function (chart, index) {
    var canvas = document.querySelector('canvas[data-chart="' + index + '"]');
    if (!canvas) return;
    var format = formatter(chart.unit);
    new window.Chart(canvas, {
      type: chart.unit === "count" ? "bar" : "line",
      data: {
        labels: chart.days,
        datasets: chart.series.map(function (series, i) {
          return { label: series.label, data: series.values, borderColor: COLORS[i % COLORS.length],
                   backgroundColor: COLORS[i % COLORS.length], spanGaps: true, pointRadius: 2, tension: 0.2 };
        }),
      },
      options: {
        animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, suggestedMax: chart.unit === "ratio" ? 1 : undefined, ticks: { callback: format } },
          x: { ticks: { maxTicksLimit: 10 } },
        },
        plugins: { tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + format(item.raw); } } } },
        onClick: function (event, elements) {
          if (!elements.length) return;
          var day = chart.days[elements[0].index];
          var series = chart.series[elements[0].datasetIndex];
          var url = new URL(chart.drill, window.location.href);
          url.searchParams.set("start", day);
          url.searchParams.set("end", day);
          url.searchParams.set("kpi", series.kpi);
          window.location.href = url.toString();
        },
      },
    });
  });
})();
