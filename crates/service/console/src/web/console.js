// Postgate web console: the only script, loaded from this origin (the
// Content-Security-Policy allows no inline script). Pages work without it;
// it adds the live parts: the log follows new lines over Server-Sent
// Events, and the statistics page refreshes its charts every minute.
"use strict";
(function () {
  function followLog(list) {
    var state = document.getElementById("follow-state");
    var source = new EventSource(list.getAttribute("data-stream"));
    source.onopen = function () {
      if (state) { state.textContent = "Following: new lines appear as they are logged."; }
    };
    source.onerror = function () {
      if (state) { state.textContent = "Not following: reconnecting…"; }
    };
    source.onmessage = function (ev) {
      var l;
      try { l = JSON.parse(ev.data); } catch (e) { return; }
      var li = document.createElement("li");
      li.setAttribute("data-level", l.level);
      li.setAttribute("data-service", l.service);
      var t = document.createElement("time");
      t.setAttribute("datetime", l.time);
      t.textContent = l.time;
      var lv = document.createElement("span");
      lv.className = "level " + String(l.level).toLowerCase();
      lv.textContent = l.level;
      var sv = document.createElement("span");
      sv.className = "svc";
      sv.textContent = l.service;
      var tx = document.createElement("span");
      tx.className = "text";
      tx.textContent = l.text;
      li.append(t, " ", lv, " ", sv, " ", tx);
      var atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
      list.appendChild(li);
      while (list.children.length > 1000) { list.removeChild(list.firstElementChild); }
      if (atEnd) { list.scrollTop = list.scrollHeight; }
    };
  }

  function refreshCharts(main) {
    var seconds = parseInt(main.getAttribute("data-refresh"), 10) || 60;
    setInterval(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["charts", "totals"].forEach(function (id) {
            var fresh = doc.getElementById(id);
            var old = document.getElementById(id);
            if (fresh && old) { old.replaceWith(fresh); }
          });
        })
        .catch(function () {});
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("log-lines");
    if (list && window.EventSource) {
      list.scrollTop = list.scrollHeight;
      followLog(list);
    }
    var stats = document.getElementById("stats");
    if (stats && window.fetch) { refreshCharts(stats); }
  });
})();
