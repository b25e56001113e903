// Small enhancements shared by the pages; every form still works as plain HTML where it can.
"use strict";

function showMessage(text, kind) {
  const box = document.getElementById("messages");
  if (!box) return;
  box.textContent = "";
  const p = document.createElement("p");
  p.className = "message " + (kind || "error");
  p.setAttribute("role", kind === "notice" ? "status" : "alert");
  p.textContent = text;
  box.appendChild(p);
  p.scrollIntoView({ block: "nearest" });
}
window.hwShowMessage = showMessage;

function formatBytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

// Each slider and its number box (data-for names the box) move together.
function linkSlider() {
  document.querySelectorAll("input[type=range][data-for]").forEach((slider) => {
    const box = document.getElementById(slider.dataset.for);
    if (!box) return;
    slider.addEventListener("input", () => { box.value = slider.value; });
    box.addEventListener("input", () => { if (box.value !== "") slider.value = box.value; });
  });
}

// Only the chosen model's parameters show; the others are disabled, so they are not sent.
function linkModelFields() {
  const form = document.getElementById("train-form");
  const model = document.getElementById("model");
  if (!form || !model) return;
  const apply = () => {
    form.querySelectorAll("[data-models]").forEach((el) => {
      const on = el.dataset.models.split(" ").includes(model.value);
      el.toggleAttribute("hidden", !on);
      el.querySelectorAll("input, select").forEach((input) => { input.disabled = !on; });
    });
  };
  model.addEventListener("change", apply);
  apply();
  const radios = form.querySelectorAll("input[name=evaluation]");
  const holdout = document.getElementById("holdout");
  const cv = document.getElementById("cv");
  const sync = () => {
    const chosen = form.querySelector("input[name=evaluation]:checked");
    const useCv = chosen && chosen.value === "cv";
    if (holdout) holdout.disabled = useCv;
    if (cv) cv.disabled = !useCv;
  };
  radios.forEach((r) => r.addEventListener("change", sync));
  sync();
}

// Uploads go through XMLHttpRequest so the page can show how far the upload got.
function linkUploads() {
  document.querySelectorAll("form[data-upload]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const line = form.querySelector(".progress-line");
      const bar = form.querySelector("progress");
      const status = form.querySelector("[role=status]");
      const button = form.querySelector("button[type=submit]");
      const data = new FormData(form);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("Accept", "application/json");
      if (line) line.hidden = false;
      if (button) button.disabled = true;
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable || !bar) return;
        bar.value = Math.round((100 * e.loaded) / e.total);
        status.textContent = "Uploading: " + formatBytes(e.loaded) + " of " + formatBytes(e.total);
      });
      xhr.upload.addEventListener("load", () => {
        if (bar) bar.removeAttribute("value");
        if (status) status.textContent = "Uploaded; checking and loading into the warehouse…";
      });
      xhr.addEventListener("load", () => {
        let answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
        if (xhr.status < 300 && answer.redirect) {
          window.location.assign(answer.redirect);
          return;
        }
        if (button) button.disabled = false;
        if (line) line.hidden = true;
        if (answer.login) { window.location.assign(answer.login); return; }
        showMessage(answer.error || ("The upload failed (HTTP " + xhr.status + ")."));
      });
      xhr.addEventListener("error", () => {
        if (button) button.disabled = false;
        if (line) line.hidden = true;
        showMessage("The upload could not reach the server; check the connection and try again.");
      });
      xhr.send(data);
    });
  });
}

function linkBusyForms() {
  document.querySelectorAll("form[data-busy]").forEach((form) => {
    form.addEventListener("submit", () => {
      const busy = form.querySelector(".busy");
      if (busy) busy.textContent = form.getAttribute("data-busy");
      const button = form.querySelector("button[type=submit]");
      if (button) setTimeout(() => { button.disabled = true; }, 0);
    });
  });
  document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
}

document.addEventListener("DOMContentLoaded", () => {
  linkSlider();
  linkModelFields();
  linkUploads();
  linkBusyForms();
});
