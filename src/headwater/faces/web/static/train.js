// "Suggest" on the train form: the best parameters a search of this dataset and model
// found so far; with none yet, start a short search and fill the form when it ends.
"use strict";

const SUGGEST_POLL_MS = 1000;

async function askSuggestion(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const found = await response.json();
  if (!response.ok) throw new Error(found.error || "no suggestion could be read");
  return found;
}

async function startSearch(url, dataset, model) {
  const body = new FormData();
  body.append("dataset", dataset);
  body.append("model", model);
  const response = await fetch(url, { method: "POST", body, headers: { Accept: "application/json" } });
  const found = await response.json();
  if (!response.ok) throw new Error(found.error || "the search did not start");
  return found;
}

// Each parameter's box is <model>-<name>; typing into it moves its slider too (app.js).
function fillParams(model, params) {
  let filled = 0;
  Object.entries(params).forEach(([name, value]) => {
    const box = document.getElementById(model + "-" + name);
    if (!box || value === null || box.disabled) return;
    box.value = String(value);
    box.dispatchEvent(new Event("input", { bubbles: true }));
    filled += 1;
  });
  return filled;
}

function score(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + "%"; }

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("suggest");
  if (!button) return;
  const status = document.getElementById("suggest-status");
  button.addEventListener("click", async () => {
    const dataset = document.getElementById("dataset").value;
    const model = document.getElementById("model").value;
    const url = button.dataset.url;
    const query = url + "?" + new URLSearchParams({ dataset, model });
    button.disabled = true;
    try {
      let found = await askSuggestion(query);
      if (!found.params && !found.searching) found = await startSearch(url, dataset, model);
      while (found.searching) {
        status.textContent = "Searching " + model + " on " + dataset + "…";
        await new Promise((done) => setTimeout(done, SUGGEST_POLL_MS));
        found = await askSuggestion(query);
      }
      if (!found.params) {
        status.textContent = "The search completed no trial; the form keeps its values.";
        return;
      }
      const filled = fillParams(model, found.params);
      status.textContent = "Filled " + filled + " parameters: the best of " + found.trials +
        " trials (run " + found.run_id + ", validation accuracy " + score(found.validation_accuracy) +
        ", test " + score(found.test_accuracy) + ").";
      status.dataset.run = found.run_id;
    } catch (error) {
      status.textContent = "";
      if (window.hwShowMessage) window.hwShowMessage(error.message);
    } finally {
      button.disabled = false;
    }
  });
});
