// End-to-end tests of the web UI in real headless Chromium.
//
//   node run.mjs BASE_URL [SCREENSHOT_DIR]
//
// BASE_URL serves `ticketgw serve --demo` (demo accounts and the fixture event). The Rust test
// `browser::web_ui_end_to_end_in_chromium` starts such a server and runs this script.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";

const base = process.argv[2];
const shots = process.argv[3] || null;
if (!base) throw new Error("usage: node run.mjs BASE_URL [SCREENSHOT_DIR]");
if (shots) mkdirSync(shots, { recursive: true });

const PHONE = { width: 360, height: 780 };
const DESKTOP = { width: 1280, height: 860 };
const ORGANIZER = { email: "organizer@example.com", password: "ticketgw-demo-organizer" };
const ADMIN = { email: "admin@example.com", password: "ticketgw-demo-admin" };
const run = Date.now().toString(36);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
});

let failures = 0;
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n${e.stack || e}`);
  }
}

async function newPage(viewport) {
  const context = await browser.newContext({ viewport, locale: "en-US", serviceWorkers: "allow" });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
  page.jsErrors = errors;
  return page;
}

async function login(page, who) {
  await page.goto(`${base}/login`);
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
}

/** Elements sticking out of the viewport to the right (tables scroll inside .table-wrap). */
async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > width) out.push(`page is ${document.documentElement.scrollWidth}px wide`);
    for (const el of document.querySelectorAll("body *")) {
      if (el.closest(".table-wrap, .sr-only, .skip, svg")) continue;
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 1) out.push(`${el.tagName.toLowerCase()}.${el.className} ends at ${Math.round(r.right)}px`);
    }
    return out.slice(0, 5);
  });
}

async function shot(page, name) {
  if (!shots) return;
  await page.evaluate(() => document.fonts.load('16px "Noto Sans Khmer"', "ខ្មែរ").then(() => document.fonts.ready));
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
}

let attendee = null;
let eventSlug = null;

await step("attendee browses, registers, books two tickets and pays in the sandbox", async () => {
  const page = await newPage(PHONE);
  await page.goto(base);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await shot(page, "home-phone");
  await page.fill("#home-q", "tech");
  await Promise.all([page.waitForNavigation(), page.press("#home-q", "Enter")]);
  assert.match(page.url(), /\/events\?q=tech/);
  await page.click(".card-link");
  await page.waitForSelector("h1");
  eventSlug = new URL(page.url()).pathname.split("/").pop();
  assert.ok(await page.isVisible("text=Diamond Island Convention Center"));
  assert.ok(await page.isVisible("a:has-text('Open map')"));
  await shot(page, "event-phone");

  // Signing in from the event page comes back to it.
  await Promise.all([page.waitForNavigation(), page.click("a:has-text('Sign in to book')")]);
  await Promise.all([page.waitForNavigation(), page.click("a:has-text('Create an account')")]);
  attendee = { email: `e2e-${run}@example.com`, password: "a long e2e password" };
  await page.fill("#display_name", "E2E Attendee");
  await page.fill("#email", attendee.email);
  await page.fill("#password", "short");
  await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  assert.equal(await page.getAttribute("#password", "aria-invalid"), "true", "a short password is refused next to its field");
  await page.fill("#password", attendee.password);
  await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  assert.equal(new URL(page.url()).pathname, `/events/${eventSlug}`);

  const qty = page.locator(".qty input").first();
  await qty.fill("2");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Book now')")]);
  assert.match(page.url(), /\/bookings\//);
  assert.ok(await page.isVisible("text=Waiting for payment"));
  const countdown = await page.textContent(".countdown");
  await page.waitForFunction((before) => document.querySelector(".countdown").textContent !== before, countdown);
  assert.match(await page.textContent(".countdown"), /^\d\d:\d\d$/);
  await shot(page, "booking-phone");
  const bookingUrl = page.url();

  await page.check("input[value=sandbox]");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Pay')")]);
  assert.match(page.url(), /\/pay\/sandbox\//);
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Pay successfully')")]);
  await Promise.all([page.waitForNavigation(), page.click("a:has-text('Back to your booking')")]);
  assert.equal(page.url(), bookingUrl);
  // The payment confirms the booking through a message; the page polls until it shows.
  await page.waitForSelector("text=Confirmed", { timeout: 20000 });
  await Promise.all([page.waitForNavigation(), page.click("a:has-text('See my tickets')")]);
  assert.equal(await page.locator(".ticket").count(), 2);
  assert.equal(await page.locator(".ticket .qr svg").count(), 2, "each ticket shows its QR code");
  await shot(page, "tickets-phone");
  assert.deepEqual(page.jsErrors, []);
});

await step("tickets stay viewable offline once opened (service worker)", async () => {
  const page = await newPage(PHONE);
  await login(page, attendee);
  await page.goto(`${base}/tickets`);
  await page.evaluate(() => navigator.serviceWorker.ready);
  // The first visit installed the worker; this one goes through it and is kept.
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  await page.goto(`${base}/tickets`);
  const codes = await page.locator(".ticket .code").allTextContents();
  await page.context().setOffline(true);
  await page.goto(`${base}/tickets`);
  assert.deepEqual(await page.locator(".ticket .code").allTextContents(), codes);
  assert.equal(await page.locator(".ticket .qr svg").count(), 2);
  // A page never opened before gets the offline page, not the browser's error.
  await page.goto(`${base}/account`);
  assert.ok(await page.isVisible("text=You are offline"));
  await page.context().setOffline(false);
});

let newEventId = null;

await step("organizer creates an event (validation shown by the fields), publishes it, sees it listed", async () => {
  const page = await newPage(DESKTOP);
  await login(page, ORGANIZER);
  await page.goto(`${base}/organizer`);
  await Promise.all([page.waitForNavigation(), page.click("a:has-text('New event')")]);
  await shot(page, "event-form-desktop");
  // Nothing filled in: the server names what is missing next to each field.
  await Promise.all([page.waitForNavigation(), page.click("form.event-form button[type=submit]")]);
  assert.ok(await page.isVisible("#form-errors"));
  assert.equal(await page.getAttribute("#f-start", "aria-invalid"), "true");

  const slug = `e2e-night-market-${run}`;
  const day = (d) => { const t = new Date(Date.now() + d * 86400000); return t.toISOString().slice(0, 10); };
  await page.fill("#f-title", "E2E Night Market");
  await page.fill("#f-summary", "Street food and music by the river.");
  await page.fill("#f-description", "An evening of Khmer street food, crafts and live music.");
  await page.fill("#f-slug", slug);
  await page.fill("#f-category_id", "cat-food");
  await page.fill("#f-category_name", "Food");
  await page.fill("#f-tags", "food, music");
  await page.fill("#f-l10n_title", "ផ្សាររាត្រី E2E");
  await page.fill("#f-venue_name", "Riverside Park");
  await page.fill("#f-venue_city", "Phnom Penh");
  await page.fill("#f-venue_address", "Sisowath Quay, Phnom Penh");
  await page.fill("#f-start", `${day(20)}T17:00`);
  await page.fill("#f-end", `${day(20)}T23:00`);
  await page.fill("#f-booking_start", `${day(-1)}T08:00`);
  await page.fill("#f-booking_end", `${day(19)}T20:00`);
  await page.fill("#f-capacity", "320");
  await page.fill("input[name=tt_id]", "entry");
  await page.fill("input[name=tt_name]", "Entry");
  await page.fill("input[name=tt_price]", "8000");
  await page.fill("input[name=tt_currency]", "KHR");
  await page.fill("input[name=tt_quantity]", "300");
  await page.fill("textarea[name=tt_benefits]", "Entry\nOne drink");
  await page.click("button:has-text('Add a ticket type')");
  assert.equal(await page.locator("[data-tt-row]").count(), 2);
  await page.locator("input[name=tt_id]").nth(1).fill("vip");
  await page.locator("input[name=tt_name]").nth(1).fill("VIP table");
  await page.locator("input[name=tt_price]").nth(1).fill("-5");
  await page.locator("input[name=tt_currency]").nth(1).fill("KHR");
  await page.locator("input[name=tt_quantity]").nth(1).fill("20");
  await Promise.all([page.waitForNavigation(), page.click("form.event-form button[type=submit]")]);
  // A negative price is refused by the API and shown on its row; what was typed is kept.
  assert.equal(await page.inputValue("#f-title"), "E2E Night Market");
  assert.ok(await page.locator("[data-tt-row] .field-error").count() >= 1, "the ticket row shows its error");
  await page.locator("input[name=tt_price]").nth(1).fill("40000");
  await Promise.all([page.waitForNavigation(), page.click("form.event-form button[type=submit]")]);
  const refused = (await page.locator("#form-errors").count()) ? await page.textContent("#form-errors") : "";
  assert.equal(refused, "", "the corrected form is accepted");
  assert.match(page.url(), /\/organizer\/events\/evt-/);
  newEventId = page.url().split("/").pop();
  assert.ok(await page.isVisible(".status-draft"));
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Publish')")]);
  assert.ok(await page.isVisible(".status-published"));
  // A banner picked from the device is uploaded and shown.
  await Promise.all([page.waitForNavigation(),
    page.setInputFiles("#banner-file", new URL("../../crates/web/assets/icon-512.png", import.meta.url).pathname)]);
  assert.ok(await page.isVisible("#current-banner"));

  await page.goto(`${base}/events?q=night+market`);
  assert.ok(await page.isVisible("text=E2E Night Market"));
  await page.goto(`${base}/events/${slug}`);
  assert.ok(await page.isVisible("text=8,000 ៛"), "KHR price shown in riel");
  await page.goto(`${base}/lang/km?next=/events/${slug}`);
  assert.equal(await page.getAttribute("html", "lang"), "km");
  assert.ok(await page.isVisible("h1:has-text('ផ្សាររាត្រី E2E')"), "the Khmer title is shown in Khmer");
  assert.deepEqual(page.jsErrors, []);
});

await step("organizer sees sales and attendees, exports CSV, scans tickets online and offline", async () => {
  const api = await browser.newContext();
  const tokens = await (await api.request.post(`${base}/api/v1/auth/login`, { data: attendee })).json();
  const mine = await (await api.request.get(`${base}/api/v1/me/tickets`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
  assert.equal(mine.items.length, 2);
  const eventId = mine.items[0].event_id;

  const page = await newPage(PHONE);
  await login(page, ORGANIZER);
  await page.goto(`${base}/organizer/events/${eventId}`);
  assert.match(await page.textContent("#stat-sold"), /^2 \//);
  assert.equal(await page.locator("figure.chart polyline").count(), 3, "one line per ticket type");
  assert.ok(await page.isVisible("text=E2E Attendee"));
  await shot(page, "dashboard-phone");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("a:has-text('Export CSV')")]);
  const csv = await (await download.createReadStream()).toArray();
  assert.match(Buffer.concat(csv).toString(), /E2E Attendee/);

  await page.goto(`${base}/organizer/events/${eventId}/scan`);
  // The first ticket's code typed by hand, as door staff do when a screen will not scan.
  await page.fill("#token", mine.items[0].code.toLowerCase());
  await page.click("#manual button");
  await page.waitForSelector(".scan-result.ok");
  assert.equal(await page.textContent("#result"), `Valid: welcome in! · ${mine.items[0].code}`);
  await page.fill("#token", "NOSUCHCODE");
  await page.click("#manual button");
  await page.waitForFunction(() => /No ticket has this code/.test(document.getElementById("result").textContent));
  await page.fill("#token", mine.items[0].token);
  await page.click("#manual button");
  await page.waitForSelector(".scan-result.warn");
  assert.match(await page.textContent("#result"), /Already checked in/);
  await shot(page, "scanner-phone");

  // Offline: the event key decides, the scan waits in the queue, and is uploaded when back online.
  await page.waitForFunction(() => localStorage.getItem("tg-scan-keys:" + document.getElementById("scanner").dataset.event));
  await page.context().setOffline(true);
  await page.fill("#token", mine.items[1].token);
  await page.click("#manual button");
  await page.waitForFunction(() => document.getElementById("pending").textContent === "1");
  assert.match(await page.textContent("#result"), /Valid.*Offline/);
  await page.fill("#token", mine.items[1].token.slice(0, -4) + "AAAA");
  await page.click("#manual button");
  await page.waitForFunction(() => /Not a valid ticket/.test(document.getElementById("result").textContent));
  await page.fill("#token", mine.items[1].code);
  await page.click("#manual button");
  await page.waitForFunction(() => /checked online only/.test(document.getElementById("result").textContent));
  assert.equal(await page.textContent("#pending"), "1", "a typed code is not queued offline");
  await page.context().setOffline(false);
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await page.waitForFunction(() => document.getElementById("pending").textContent === "0", null, { timeout: 20000 });
  const after = await (await api.request.get(`${base}/api/v1/me/tickets`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
  assert.ok(after.items.every((t) => t.checked_in_at), "both tickets are checked in on the server");
  await api.close();
});

await step("the door scanner reads a ticket's QR code through the camera", async () => {
  // Chromium's fake camera plays a video file: one frame showing the attendee's first ticket.
  const page = await newPage(PHONE);
  await login(page, attendee);
  await page.goto(`${base}/tickets`);
  const [W, H] = [640, 480];
  const luma = await page.evaluate(async ([W, H]) => {
    const svg = new XMLSerializer().serializeToString(document.querySelector(".ticket .qr svg"));
    const img = new Image();
    img.src = "data:image/svg+xml;base64," + btoa(svg);
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const g = canvas.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, W, H);
    g.drawImage(img, (W - 420) / 2, (H - 420) / 2, 420, 420);
    const rgba = g.getImageData(0, 0, W, H).data;
    const y = new Array(W * H);
    for (let i = 0; i < W * H; i++) y[i] = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
    return y;
  }, [W, H]);
  await page.context().close();
  const video = `${tmpdir()}/tg-qr-${run}.y4m`;
  const chroma = Buffer.alloc((W / 2) * (H / 2) * 2, 128);
  writeFileSync(video, Buffer.concat([Buffer.from(`YUV4MPEG2 W${W} H${H} F5:1 Ip A1:1 C420jpeg\nFRAME\n`), Buffer.from(luma), chroma]));

  const camera = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${video}`],
  });
  try {
    const context = await camera.newContext({ viewport: PHONE });
    await context.grantPermissions(["camera"], { origin: base });
    const door = await context.newPage();
    await door.goto(`${base}/login`);
    await door.fill("#email", ORGANIZER.email);
    await door.fill("#password", ORGANIZER.password);
    await Promise.all([door.waitForNavigation(), door.click("form button[type=submit]")]);
    const api = await browser.newContext();
    const tokens = await (await api.request.post(`${base}/api/v1/auth/login`, { data: attendee })).json();
    const mine = await (await api.request.get(`${base}/api/v1/me/tickets`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
    await api.close();
    await door.goto(`${base}/organizer/events/${mine.items[0].event_id}/scan`);
    await door.click("#start-camera");
    // Both tickets were checked in by the previous step, so the camera's scan must say so.
    await door.waitForFunction(() => /Already checked in/.test(document.getElementById("result").textContent), null, { timeout: 15000 });
  } finally {
    await camera.close();
  }
});

await step("attendee refunds a chosen ticket from the booking page", async () => {
  const page = await newPage(PHONE);
  await login(page, attendee);
  await page.goto(`${base}/events/${eventSlug}`);
  // VIP tickets are refundable (the first type on sale need not be).
  await page.fill("input[name=qty_vip]", "2");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Book now')")]);
  const bookingUrl = page.url();
  await page.check("input[value=sandbox]");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Pay')")]);
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Pay successfully')")]);
  await page.goto(bookingUrl);
  await page.waitForSelector("text=Confirmed", { timeout: 20000 });
  await page.goto(bookingUrl);
  assert.equal(await page.locator("input[name=ticket]").count(), 2, "both tickets can be refunded");
  const [chosen, kept] = await page.locator("input[name=ticket]").evaluateAll((inputs) => inputs.map((i) => i.value));
  const price = (await page.locator("label.choice:has(input[name=ticket])").first().textContent()).split("·").pop().trim();
  await page.locator(`input[name=ticket][value="${chosen}"]`).check();
  // The confirmation dialog is accepted (see newPage).
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Refund the chosen tickets')")]);
  assert.equal(page.url(), bookingUrl);
  assert.deepEqual(await page.locator("input[name=ticket]").evaluateAll((inputs) => inputs.map((i) => i.value)), [kept],
    "the chosen ticket, and only it, is refunded");
  assert.ok(await page.isVisible("text=Cancelled"), "the refunded ticket says so");
  // The money goes back through a message; the page shows it once the provider has paid it.
  for (let i = 0; i < 40 && !(await page.isVisible("text=/^Refunded:/")); i++) {
    await page.waitForTimeout(250);
    await page.goto(bookingUrl);
  }
  assert.equal((await page.textContent("p.status-refunded")).trim(), `Refunded: ${price}`, "one ticket's price goes back");
  await shot(page, "refund-phone");
  assert.deepEqual(page.jsErrors, []);
});

await step("booking works with the keyboard alone", async () => {
  const page = await newPage(DESKTOP);
  await login(page, attendee);
  await page.goto(`${base}/events/${eventSlug}`);
  // The first Tab reaches the skip link, which takes focus past the navigation.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  const tabTo = async (test, what) => {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(test)) return;
    }
    assert.fail(`Tab never reached ${what}`);
  };
  await tabTo(() => document.activeElement.name === "qty_vip", "the VIP quantity");
  await page.keyboard.type("1");
  await tabTo(() => document.activeElement.textContent.trim() === "Book now", "Book now");
  // A visible focus ring: the outline of :focus-visible is drawn.
  const ring = await page.evaluate(() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; });
  assert.deepEqual(ring, ["solid", "3px"], "the app's focus ring, not the browser's default");
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.match(page.url(), /\/bookings\//);
  assert.ok(await page.isVisible("text=1 × VIP"));
  await tabTo(() => document.activeElement.textContent.trim() === "Cancel and release the seats", "the cancel button");
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.ok(await page.isVisible("p.status:has-text('Cancelled')"), "the hold is released");
  assert.deepEqual(page.jsErrors, []);
});

await step("admin pages list users, applications, events and the audit log", async () => {
  const page = await newPage(DESKTOP);
  await login(page, ADMIN);
  for (const [path, text] of [["/admin", "organizer@example.com"], ["/admin/applications", "Organizer applications"],
    ["/admin/events", "Tech Conference"], ["/admin/audit", "Audit log"]]) {
    await page.goto(`${base}${path}`);
    assert.ok(await page.isVisible(`text=${text}`), `${path} shows ${text}`);
  }
  await shot(page, "admin-users-desktop");
  // An attendee gets "not allowed", not the admin page.
  const other = await newPage(DESKTOP);
  await login(other, attendee);
  const res = await other.goto(`${base}/admin`);
  assert.equal(res.status(), 403);
});

await step("attendee's account: sessions signed out, a new password, the forgot-password page in English and Khmer", async () => {
  const page = await newPage(PHONE);
  await login(page, attendee);
  const elsewhere = await newPage(DESKTOP);
  await login(elsewhere, attendee);
  await page.goto(`${base}/account`);
  assert.ok(await page.isVisible("text=not verified"), "a registered address is unverified until its link is followed");
  assert.ok(await page.isVisible("li.session:has-text('this device')"));
  assert.ok(await page.locator("li.session").count() >= 2, "both browsers are listed");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Sign out everywhere else')")]);
  assert.equal(await page.locator("li.session").count(), 1);
  // A new password, proving the current one; wrong first.
  await page.fill("#current_password", "not the password");
  await page.fill("#new_password", "an even longer e2e password");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Change password')")]);
  assert.ok(await page.isVisible("text=the current password is incorrect"));
  await page.fill("#current_password", attendee.password);
  await page.fill("#new_password", "an even longer e2e password");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Change password')")]);
  assert.ok(await page.isVisible("text=Saved."));
  attendee.password = "an even longer e2e password";
  await shot(page, "account-security-phone");
  // Forgot password: the same answer whoever asks.
  const anon = await newPage(PHONE);
  await anon.goto(`${base}/login`);
  await Promise.all([anon.waitForNavigation(), anon.click("a:has-text('Forgot your password?')")]);
  await anon.fill("#email", attendee.email);
  await Promise.all([anon.waitForNavigation(), anon.click("form button[type=submit]")]);
  assert.ok(await anon.isVisible("text=If the address has an account, the link is on its way"));
  await anon.goto(`${base}/lang/km?next=/account/forgot-password`);
  assert.equal(await anon.textContent("h1"), "ភ្លេចពាក្យសម្ងាត់");
  await anon.goto(`${base}/lang/en`);
  assert.deepEqual([...page.jsErrors, ...anon.jsErrors], []);
});

await step("nothing overflows a 360 px phone screen, in English and Khmer", async () => {
  const page = await newPage(PHONE);
  await login(page, ORGANIZER);
  const paths = ["/", "/events", `/events/${eventSlug}`, "/login", "/register", "/tickets", "/account", "/organizer",
    "/account/forgot-password", "/account/reset-password?token=x",
    "/organizer/events/new", `/organizer/events/${newEventId}`, `/organizer/events/${newEventId}/edit`,
    `/organizer/events/${newEventId}/scan`];
  for (const lang of ["en", "km"]) {
    await page.goto(`${base}/lang/${lang}`);
    for (const path of paths) {
      await page.goto(`${base}${path}`);
      assert.deepEqual(await overflow(page), [], `${path} (${lang}) fits 360 px`);
    }
  }
  // Khmer text is drawn with the bundled Khmer font.
  await page.goto(`${base}/lang/km?next=/events`);
  await page.evaluate(() => document.fonts.ready);
  assert.ok(await page.evaluate(() => document.fonts.check('16px "Noto Sans Khmer"', "ព្រឹត្តិការណ៍")));
  await shot(page, "events-km-phone");
  await page.goto(`${base}/lang/en`);
});

await step("main pages have no serious accessibility violations (axe-core)", async () => {
  // axe is injected as a script, which the pages' CSP forbids; this context alone bypasses it.
  const context = await browser.newContext({ viewport: PHONE, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.fill("#email", ORGANIZER.email);
  await page.fill("#password", ORGANIZER.password);
  await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  const paths = ["/", "/events", `/events/${eventSlug}`, "/tickets", "/account", "/organizer", "/organizer/events/new",
    `/organizer/events/${newEventId}`, `/organizer/events/${newEventId}/scan`, "/lang/km?next=/events"];
  const problems = [];
  for (const path of paths) {
    await page.goto(`${base}${path}`);
    await page.addScriptTag({ path: new URL("./node_modules/axe-core/axe.min.js", import.meta.url).pathname });
    const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.nodes.slice(0, 2).map((n) => n.target.join(" ")).join(", ")}`));
    problems.push(...found.map((f) => `${path} ${f}`));
  }
  await context.close();
  assert.deepEqual(problems, []);
});

await step("desktop screenshots of the main pages", async () => {
  const page = await newPage(DESKTOP);
  for (const [path, name] of [["/", "home-desktop"], [`/events/${eventSlug}`, "event-desktop"]]) {
    await page.goto(`${base}${path}`);
    assert.deepEqual(await overflow(page), []);
    await shot(page, name);
  }
});

await browser.close();
if (failures) {
  console.log(`${failures} end-to-end step(s) failed`);
  process.exit(1);
}
console.log("all end-to-end steps passed");
