// Live progress of a training run: server-sent events from /ui/runs/{id}/events.
"use strict";

function percent(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(2) + "%"; }
function num(v) { return v === null || v === undefined ? "–" : Number(v).toPrecision(4); }

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (!live || !live.dataset.events) return;
  const body = document.getElementById("epochs");
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const badge = document.getElementById("run-status");
  const waiting = document.getElementById("waiting");
  const setStatus = (status) => {
    badge.textContent = status;
    badge.className = "badge " + status;
  };
  const source = new EventSource(live.dataset.events);
  source.addEventListener("status", (e) => {
    const info = JSON.parse(e.data);
    setStatus(info.status);
    if (waiting && info.status === "running") waiting.textContent = "Training… This page updates by itself.";
  });
  source.addEventListener("epoch", (e) => {
    const m = JSON.parse(e.data);
    const row = document.createElement("tr");
    [m.epoch, num(m.loss), percent(m.accuracy), num(m.val_loss), percent(m.val_accuracy)].forEach((v) => {
      const cell = document.createElement("td");
      cell.className = "num";
      cell.textContent = v;
      row.appendChild(cell);
    });
    body.appendChild(row);
    if (bar && m.epochs) { bar.max = m.epochs; bar.value = m.epoch; }
    if (text && m.epochs) text.textContent = m.epoch + " of " + m.epochs + " epochs";
    setStatus("running");
  });
  source.addEventListener("done", (e) => {
    source.close();
    const info = JSON.parse(e.data);
    setStatus(info.status);
    if (waiting) waiting.remove();
    fetch(live.dataset.result, { headers: { Accept: "text/html" } })
      .then((r) => r.text())
      .then((html) => { document.getElementById("result").innerHTML = html; });
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED && window.hwShowMessage) {
      window.hwShowMessage("Lost the connection to the server; reload the page to see the run.");
    }
  });
});
