// The t-SNE map: hovering (or focusing) a point shows its image and label beside it.
(function () {
  "use strict";
  const map = document.getElementById("tsne-map");
  const tip = document.getElementById("map-tip");
  if (!map || !tip) return;
  const img = tip.querySelector("img");
  const text = tip.querySelector("span");
  const base = map.dataset.images;

  function show(dot, x, y) {
    const key = dot.dataset.key;
    if (key && key !== "-1") {
      img.src = base + key + ".png";
      img.hidden = false;
    } else {
      img.hidden = true;
    }
    img.alt = "image " + key;
    text.textContent = dot.dataset.label;
    tip.style.left = x + 12 + "px";
    tip.style.top = y + 12 + "px";
    tip.hidden = false;
  }

  map.addEventListener("mouseover", function (event) {
    const dot = event.target.closest("circle");
    if (!dot) return;
    const box = map.parentElement.getBoundingClientRect();
    show(dot, event.clientX - box.left, event.clientY - box.top);
  });
  map.addEventListener("mouseleave", function () {
    tip.hidden = true;
  });
})();
