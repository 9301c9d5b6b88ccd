// Service worker: static files from cache, and "My tickets" kept for offline use once opened.
const STATIC = "tg-static-__VERSION__";
const PAGES = "tg-pages";
const PRECACHE = [
  "/offline", "/assets/app.css?v=__VERSION__", "/assets/app.js?v=__VERSION__", "/assets/vendor/htmx-2.0.11.min.js",
  "/assets/scanner.js?v=__VERSION__", "/assets/vendor/jsqr-1.4.0.js", "/assets/icon.svg", "/assets/icon-192.png",
  "/assets/vendor/noto-sans-khmer-400.woff2", "/assets/vendor/noto-sans-khmer-700.woff2",
];
// Pages worth having offline: the ticket list (with its QR codes) and the door scanner of each event.
const keepOffline = (path) => path === "/tickets" || /^\/organizer\/events\/[^/]+\/scan$/.test(path);

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
  const keep = keepOffline(url.pathname);
  event.respondWith(
    fetch(req)
      .then((res) => {
        // Sent to the sign-in page: nobody is signed in here any more, so nobody's pages are kept.
        if (res.redirected && new URL(res.url).pathname === "/login") caches.delete(PAGES);
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
