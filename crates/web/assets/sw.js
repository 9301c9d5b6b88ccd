// Service worker: static files from cache, and "My tickets" kept for offline use once opened.
const STATIC = "tg-static-__VERSION__";
const PAGES = "tg-pages";
const PRECACHE = [
  "/offline", "/assets/app.css?v=1", "/assets/app.js?v=1", "/assets/vendor/htmx-2.0.11.min.js",
  "/assets/icon.svg", "/assets/icon-192.png",
  "/assets/vendor/noto-sans-khmer-400.woff2", "/assets/vendor/noto-sans-khmer-700.woff2",
];
// Pages worth having offline: the ticket list (with its QR codes).
const OFFLINE_PAGES = ["/tickets"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(STATIC).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("tg-static-") && k !== STATIC).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/assets/")) {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
    return;
  }
  if (req.mode !== "navigate") return;
  const keep = OFFLINE_PAGES.includes(url.pathname);
  event.respondWith(
    fetch(req)
      .then((res) => {
        // Only a real page of the signed-in user is kept (not a login redirect).
        if (keep && res.ok && !res.redirected) {
          const copy = res.clone();
          caches.open(PAGES).then((c) => c.put(url.pathname, copy));
        }
        return res;
      })
      .catch(() => caches.match(keep ? url.pathname : req, { ignoreSearch: keep })
        .then((hit) => hit || caches.match("/offline"))),
  );
});

// Signing out forgets the kept pages.
self.addEventListener("message", (event) => {
  if (event.data === "signed-out") caches.delete(PAGES);
});
