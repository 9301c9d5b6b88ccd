// Door scanner: reads QR codes with the camera (BarcodeDetector, else jsQR), checks them online,
// and offline verifies the ticket's Ed25519 signature with the event's public key, queueing the
// scan to upload when the connection returns. Scans carry a nonce, so an upload repeated is harmless.
// A code typed from the ticket (when its screen will not scan) is checked online only: offline there
// is nothing to check it against.
(() => {
  "use strict";
  const root = document.getElementById("scanner");
  if (!root) return;
  const eventId = root.dataset.event;
  const csrf = root.dataset.csrf;
  const t = (k) => root.dataset["t" + k.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())] || k;
  const queueKey = "tg-scan-queue:" + eventId;
  const seenKey = "tg-scan-seen:" + eventId;
  const keysKey = "tg-scan-keys:" + eventId;
  const $ = (id) => document.getElementById(id);
  const load = (k, d) => { try { return JSON.parse(localStorage.getItem(k)) || d; } catch { return d; } };
  const save = (k, v) => localStorage.setItem(k, JSON.stringify(v));

  const show = (text, kind) => {
    const r = $("result");
    r.textContent = text;
    r.className = "scan-result " + kind;
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + " · " + text;
    $("history").prepend(li);
    if (navigator.vibrate) navigator.vibrate(kind === "ok" ? 80 : [60, 60, 60]);
  };
  const pending = () => { $("pending").textContent = load(queueKey, []).length; };

  const RESULTS = {
    valid: ["valid", "ok"], already_checked_in: ["already", "warn"], invalid: ["invalid", "bad"],
    wrong_event: ["wrong-event", "bad"], cancelled: ["cancelled", "bad"], unknown_code: ["unknown-code", "bad"],
  };
  const remember = (ticketId) => {
    if (!ticketId) return;
    const seen = load(seenKey, []);
    if (!seen.includes(ticketId)) { seen.push(ticketId); save(seenKey, seen); }
  };
  const showResult = (r, suffix) => {
    const [key, kind] = RESULTS[r.result] || ["invalid", "bad"];
    show(t(key) + (r.code ? " · " + r.code : "") + (suffix || ""), kind);
  };

  const post = (path, body, signal) => fetch("/organizer/events/" + encodeURIComponent(eventId) + path, {
    method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify(body), signal,
  });

  // The event's public key, kept for offline use.
  const refreshKeys = () => fetch("/api/v1/events/" + encodeURIComponent(eventId) + "/ticket-keys")
    .then((r) => (r.ok ? r.json() : null)).then((jwks) => { if (jwks) save(keysKey, jwks); }).catch(() => {});

  const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  const verifyOffline = async (token) => {
    const parts = token.split(".");
    if (parts.length !== 3) return { result: "invalid" };
    let header, claims;
    try { header = JSON.parse(new TextDecoder().decode(b64(parts[0]))); claims = JSON.parse(new TextDecoder().decode(b64(parts[1]))); }
    catch { return { result: "invalid" }; }
    const jwk = (load(keysKey, { keys: [] }).keys || []).find((k) => k.kid === header.kid);
    if (header.alg !== "EdDSA" || !jwk) return { result: claims.eid && claims.eid !== eventId ? "wrong_event" : "invalid" };
    const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, b64(parts[2]), new TextEncoder().encode(parts[0] + "." + parts[1]));
    if (!ok) return { result: "invalid" };
    if (claims.eid !== eventId) return { result: "wrong_event", code: claims.code };
    const seen = load(seenKey, []);
    if (seen.includes(claims.tid)) return { result: "already_checked_in", code: claims.code };
    seen.push(claims.tid);
    save(seenKey, seen);
    return { result: "valid", code: claims.code };
  };

  const check = async (text) => {
    text = text.trim();
    if (!text) return;
    // QR codes hold a signed token (three dot-separated parts); anything else is a printed code.
    const typedCode = !text.includes(".");
    const scan = { [typedCode ? "code" : "token"]: text, nonce: crypto.randomUUID(), gate: $("gate").value || null };
    try {
      // A connection that hangs at the door must not hold the line: fall back to offline after 4 s.
      const res = await post("/checkins", scan, AbortSignal.timeout(4000));
      if (res.status >= 500) throw new Error("server");
      const body = await res.json();
      if (!res.ok) { show(body.detail || body.title || t("invalid"), "bad"); return; }
      $("mode").textContent = "online";
      if (body.result === "valid" || body.result === "already_checked_in") remember(body.ticket_id);
      showResult(body);
    } catch {
      // No connection: decide with the event key, upload later.
      $("mode").textContent = "offline";
      if (typedCode) { show(t("code-needs-online"), "warn"); return; }
      let r;
      try { r = await verifyOffline(text); } catch { show(t("offline") + ": " + t("invalid"), "bad"); return; }
      if (r.result === "valid") {
        const queue = load(queueKey, []);
        queue.push({ ...scan, scanned_at: new Date().toISOString() });
        save(queueKey, queue);
        pending();
      }
      showResult(r, " · " + t("offline") + (r.result === "valid" ? " (" + t("queued") + ")" : ""));
    }
  };

  // Uploads queued scans, 500 at a time, one upload at once; entries leave the queue by nonce, so
  // scans queued meanwhile stay. A batch the server refuses (4xx) is dropped and said so.
  let syncing = false;
  const sync = async () => {
    if (syncing) return;
    syncing = true;
    try {
      for (;;) {
        const batch = load(queueKey, []).slice(0, 500);
        if (!batch.length) break;
        const res = await post("/checkins/batch", { scans: batch }, AbortSignal.timeout(15000));
        if (res.status >= 500) break;
        const sent = new Set(batch.map((s) => s.nonce));
        save(queueKey, load(queueKey, []).filter((s) => !sent.has(s.nonce)));
        pending();
        $("mode").textContent = "online";
        if (!res.ok) { show(t("invalid") + " (" + batch.length + ")", "bad"); continue; }
        const body = await res.json();
        const conflicts = (body.results || []).filter((r) => r.result !== "valid").length;
        show(t("synced") + " (" + batch.length + ")" + (conflicts ? " · " + t("already") + ": " + conflicts : ""), conflicts ? "warn" : "ok");
      }
    } catch { /* still offline */ } finally { syncing = false; }
  };

  // Camera reading; one answer per code every few seconds.
  let last = "", lastAt = 0;
  const found = (text) => {
    if (text === last && Date.now() - lastAt < 4000) return;
    last = text; lastAt = Date.now();
    check(text);
  };
  const startCamera = async () => {
    const video = $("camera");
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      await video.play();
    } catch { show(t("no-camera"), "warn"); return; }
    const detector = "BarcodeDetector" in window ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    const canvas = $("frame");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    setInterval(async () => {
      if (video.readyState < 2) return;
      if (detector) {
        const codes = await detector.detect(video).catch(() => []);
        if (codes.length) found(codes[0].rawValue);
      } else if (window.jsQR) {
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        ctx.drawImage(video, 0, 0);
        const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const code = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" });
        if (code) found(code.data);
      }
    }, 250);
  };

  $("start-camera").addEventListener("click", startCamera);
  $("manual").addEventListener("submit", (e) => { e.preventDefault(); check($("token").value); $("token").value = ""; });
  window.addEventListener("online", sync);
  setInterval(sync, 15000);
  refreshKeys();
  pending();
  sync();
})();
