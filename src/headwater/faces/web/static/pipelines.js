// Start a pipeline and follow its steps: post the form, then poll the run until it ends.
"use strict";

const POLL_MS = 300;

function drawSteps(section, run) {
  const list = section.querySelector("ol.steps");
  list.textContent = "";
  run.steps.forEach((step) => {
    const item = document.createElement("li");
    item.dataset.step = step.step;
    item.dataset.status = step.status;
    const name = document.createElement("span");
    name.className = "step-name";
    name.textContent = step.step;
    const badge = document.createElement("span");
    badge.className = "badge " + step.status.replace(" ", "-");
    badge.textContent = step.status;
    const hint = document.createElement("span");
    hint.className = "hint";
    const seconds = step.seconds === null ? "" : step.seconds.toFixed(2) + " s ";
    hint.textContent = seconds + (step.summary || "") + (step.error ? " " + step.error : "");
    item.append(name, " ", badge, " ", hint);
    list.appendChild(item);
  });
  const line = section.querySelector(".run-line");
  line.textContent = "Run " + run.pipeline_run_id + ": " + run.status +
    (run.outcome ? " (" + run.outcome + ")" : "") + (run.error ? ": " + run.error : "");
  line.dataset.status = run.status;
}

// The history and the chart are drawn by the server: fetch the page again and swap this
// pipeline's section (and the messages) for the new one, which holds the run.
async function redraw(section, runId) {
  const url = "/ui/pipelines?run=" + encodeURIComponent(runId);
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const replacement = fresh.getElementById(section.id);
  if (replacement) section.replaceWith(document.importNode(replacement, true));
  const messages = fresh.getElementById("messages");
  if (messages) document.getElementById("messages").replaceWith(document.importNode(messages, true));
}

async function follow(section, statusUrl, runId) {
  for (;;) {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
    const run = await response.json();
    if (!response.ok) throw new Error(run.error || "could not read the run");
    drawSteps(section, run);
    if (run.status !== "running") {
      await redraw(section, runId);
      return;
    }
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

// Delegated, so a section swapped in by redraw() starts runs too.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-pipeline-start")) return;
  event.preventDefault();
  const section = form.closest("[data-pipeline]");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || "the pipeline did not start");
    await follow(section, answer.status_url, answer.pipeline_run_id);
  } catch (error) {
    button.disabled = false;
    if (window.hwShowMessage) window.hwShowMessage(error.message);
  }
});
