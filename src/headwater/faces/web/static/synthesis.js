// Live progress of a synthesis: polls /ui/syntheses/{id}/status, then loads the report.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (!live || !live.dataset.status) return;
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const badge = document.getElementById("synthesis-status");
  const waiting = document.getElementById("waiting");
  const show = (info) => {
    badge.textContent = info.status;
    badge.className = "badge " + info.status;
    const p = info.progress || {};
    if (p.epochs) { bar.max = p.epochs; bar.value = p.epoch || 0; }
    const stage = p.stage || (info.status === "queued" ? "waiting in the queue" : info.status);
    text.textContent = stage + (p.epochs ? ": " + (p.epoch || 0) + " of " + p.epochs + " epochs" : "");
  };
  const poll = () => {
    fetch(live.dataset.status, { headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .then((info) => {
        show(info);
        if (!info.finished) { setTimeout(poll, 500); return; }
        if (waiting) waiting.remove();
        if (info.status === "succeeded") { bar.value = bar.max; text.textContent = "done"; }
        return fetch(live.dataset.result, { headers: { Accept: "text/html" } })
          .then((r) => r.text())
          .then((html) => { document.getElementById("result").innerHTML = html; });
      })
      .catch(() => {
        if (window.hwShowMessage) window.hwShowMessage("Lost the connection to the server; reload the page.");
        setTimeout(poll, 2000);
      });
  };
  poll();
});
