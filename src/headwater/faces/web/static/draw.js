// Draw a digit: pointer strokes on a canvas; the server makes it MNIST-like and classifies it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const pad = document.getElementById("pad");
  if (!pad) return;
  const ctx = pad.getContext("2d");
  const seen = document.getElementById("seen");
  const digit = document.getElementById("digit");
  const confidence = document.getElementById("confidence");
  const list = document.getElementById("probabilities");
  const model = document.getElementById("draw-model");
  const classifyButton = document.getElementById("classify");
  let drawing = false;
  let inked = false;

  const reset = () => {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
  };
  reset();
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#111111";

  const point = (event) => {
    const box = pad.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * pad.width) / box.width,
      ((event.clientY - box.top) * pad.height) / box.height,
    ];
  };
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    inked = true;
    const [x, y] = point(event);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = point(event);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const stop = () => { drawing = false; };
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);

  const showSeen = (pixels, side) => {
    seen.width = side;
    seen.height = side;
    const sctx = seen.getContext("2d");
    const image = sctx.createImageData(side, side);
    pixels.forEach((v, i) => {
      image.data[4 * i] = v;
      image.data[4 * i + 1] = v;
      image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    });
    sctx.putImageData(image, 0, 0);
  };

  const showBars = (probabilities, best) => {
    list.textContent = "";
    probabilities.forEach(({ label, p }) => {
      const item = document.createElement("li");
      if (label === best) item.className = "best";
      const name = document.createElement("span");
      name.className = "bar-label";
      name.textContent = label;
      const track = document.createElement("span");
      track.className = "bar-track";
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (100 * p).toFixed(1) + "%";
      track.appendChild(bar);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = (100 * p).toFixed(1) + "%";
      item.append(name, track, value);
      list.appendChild(item);
    });
  };

  const clearAnswer = () => {
    digit.textContent = "?";
    confidence.textContent = "";
    list.textContent = "";
    seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
  };

  document.getElementById("clear").addEventListener("click", () => { reset(); clearAnswer(); });

  classifyButton.addEventListener("click", async () => {
    if (!inked) {
      window.hwShowMessage("The canvas is empty: draw a digit first.");
      return;
    }
    classifyButton.disabled = true;
    digit.textContent = "…";
    try {
      const response = await fetch("/ui/draw/classify", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ model: model.value, image: pad.toDataURL("image/png") }),
      });
      const answer = await response.json();
      if (!response.ok) {
        digit.textContent = "?";
        window.hwShowMessage(answer.error || "The server could not classify the drawing.");
        return;
      }
      document.getElementById("messages").textContent = "";
      showSeen(answer.pixels, answer.side);
      digit.textContent = answer.label;
      confidence.textContent = " (" + (100 * answer.probability).toFixed(1) + "% sure)";
      showBars(answer.probabilities, answer.label);
    } catch (error) {
      digit.textContent = "?";
      window.hwShowMessage("Could not reach the server; check the connection and try again.");
    } finally {
      classifyButton.disabled = false;
    }
  });
});
