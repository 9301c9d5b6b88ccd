// Small progressive enhancements; every page works without them.
(() => {
  "use strict";

  // One submit per form (marked data-once): the button waits while the request runs.
  document.addEventListener("submit", (e) => {
    const form = e.target;
    const asker = e.submitter && e.submitter.dataset.confirm ? e.submitter : form;
    if (asker.dataset && asker.dataset.confirm && !window.confirm(asker.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    if (form.getAttribute("action") === "/logout" && navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage("signed-out");
    }
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.sent) { e.preventDefault(); return; }
    form.dataset.sent = "1";
    // Disable after the browser has read the submitter's name/value.
    setTimeout(() => form.querySelectorAll("button[type=submit], button:not([type])").forEach((b) => b.setAttribute("aria-busy", "true")), 0);
  });
  // Coming back with the back button shows the form usable again.
  window.addEventListener("pageshow", () => document.querySelectorAll("form[data-sent]").forEach((f) => {
    delete f.dataset.sent;
    f.querySelectorAll("[aria-busy]").forEach((b) => b.removeAttribute("aria-busy"));
  }));

  // Hold countdowns: mm:ss until expiry, then reload to show the new state.
  const tick = () => {
    document.querySelectorAll("[data-countdown]").forEach((el) => {
      const left = Math.max(0, Math.floor((Date.parse(el.dataset.countdown) - Date.now()) / 1000));
      el.textContent = String(Math.floor(left / 60)).padStart(2, "0") + ":" + String(left % 60).padStart(2, "0");
      if (left === 0 && !el.dataset.done) { el.dataset.done = "1"; setTimeout(() => location.reload(), 1500); }
    });
  };
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);

  // Inline styles are not allowed (CSP), so sizes and colours given as data are applied here.
  const paint = () => {
    document.querySelectorAll("[data-percent]").forEach((el) => { el.style.width = el.dataset.percent + "%"; });
    document.querySelectorAll("[data-color]").forEach((el) => { el.style.background = el.dataset.color; });
  };
  document.addEventListener("DOMContentLoaded", paint);

  // Images that fail to load (an unreachable banner host) become the gradient placeholder.
  const replaceBroken = (img) => {
    const div = document.createElement("div");
    div.className = img.className + " placeholder";
    div.setAttribute("aria-hidden", "true");
    img.replaceWith(div);
  };
  document.addEventListener("error", (e) => { if (e.target.tagName === "IMG") replaceBroken(e.target); }, true);
  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("img").forEach((img) => {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) replaceBroken(img);
  }));

  // "Add a ticket type": a copy of the last row, emptied.
  document.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-add-row]");
    if (!btn) return;
    const box = document.querySelector(btn.dataset.addRow);
    const rows = box.querySelectorAll("[data-tt-row]");
    const copy = rows[rows.length - 1].cloneNode(true);
    copy.querySelectorAll("input, textarea").forEach((i) => { i.value = ""; });
    copy.querySelectorAll(".field-error").forEach((p) => p.remove());
    box.appendChild(copy);
    copy.querySelector("input").focus();
  });

  // Banner upload: the file goes as it is (no multipart), with the CSRF token in a header.
  document.addEventListener("change", async (e) => {
    const input = e.target.closest("[data-banner-upload]");
    if (!input || !input.files.length) return;
    const file = input.files[0];
    const status = document.getElementById("banner-status");
    status.textContent = "…";
    try {
      const res = await fetch(input.dataset.bannerUpload, {
        method: "PUT", headers: { "content-type": file.type, "x-csrf-token": input.dataset.csrf }, body: file,
      });
      if (res.ok) { location.reload(); return; }
      const problem = await res.json().catch(() => ({}));
      status.textContent = problem.detail || problem.title || res.statusText;
    } catch (err) { status.textContent = String(err); }
  });

  // The service worker keeps opened tickets for offline use.
  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => navigator.serviceWorker.register("/sw.js").catch(() => {}));
  }
})();
