// Watches and steers the part PUTs a page sends, at the network layer (Playwright
// routing sees XHR and fetch alike, so it works although the client PUTs parts with
// XMLHttpRequest): records each PUT by part, counts those in flight, and lets a test
// answer, fail, hold or pass each one.
//
//   const puts = await watchPuts(page);
//   puts.handler = (put, route) => put.part === 2 && put.nth === 1 ? puts.answer(route, 500) : undefined;
//   ... upload ...
//   puts.countByPart();   // { 1: 1, 2: 2, 3: 1 }
//
// A handler returns a promise (or value) that is truthy when it took care of the
// route itself; otherwise the PUT goes on to the server. Part numbers are read from
// the worker's `/blob/<fileId>/<part>` URLs or an S3 URL's `partNumber` query.

/** The part number a part URL names, or null for another URL. */
export function partOf(url) {
  const u = new URL(url);
  const query = u.searchParams.get("partNumber");
  if (query) return Number(query);
  const m = u.pathname.match(/^\/blob\/[^/]+\/(\d+)$/);
  return m ? Number(m[1]) : null;
}

export async function watchPuts(page) {
  const puts = {
    /** Every part PUT, in the order they were sent: { part, nth, at, outcome }. */
    log: [],
    inFlight: 0,
    maxInFlight: 0,
    /** (put, route) => truthy when it handled the route. */
    handler: null,
    held: [],
    reset() {
      this.log = [];
      this.inFlight = 0;
      this.maxInFlight = 0;
      this.handler = null;
      this.releaseAll();
    },
    /** Parts sent, in order. */
    parts() {
      return this.log.map((p) => p.part);
    },
    /** How many times each part was sent. */
    countByPart() {
      const counts = {};
      for (const p of this.log) counts[p.part] = (counts[p.part] ?? 0) + 1;
      return counts;
    },
    /** Answers `route` with `status`, a body and headers of the test's choosing. */
    async answer(route, status, { body = "injected", headers = {} } = {}) {
      await route.fulfill({ status, body, headers: { "access-control-allow-origin": "*", ...headers } }).catch(() => {});
      return true;
    },
    /** Fails `route` as a network error would. */
    async fail(route) {
      await route.abort("connectionreset").catch(() => {});
      return true;
    },
    /** Holds `route` unanswered (a stall) until releaseAll(); resolves at once. */
    hold(route) {
      this.held.push(route);
      return true;
    },
    releaseAll() {
      for (const route of this.held.splice(0)) route.abort("connectionreset").catch(() => {});
    },
    /** Resolves once `predicate(log)` holds, checked on every PUT and outcome. */
    until(predicate) {
      return new Promise((resolve) => {
        const check = () => {
          if (predicate(this.log)) {
            this.waiters.delete(check);
            resolve();
          }
        };
        this.waiters.add(check);
        check();
      });
    },
    waiters: new Set(),
    notify() {
      for (const check of [...this.waiters]) check();
    },
  };

  const open = new Map(); // request -> log entry
  page.on("request", (req) => {
    if (req.method() !== "PUT" || partOf(req.url()) === null) return;
    puts.inFlight += 1;
    puts.maxInFlight = Math.max(puts.maxInFlight, puts.inFlight);
  });
  const settle = (req, outcome) => {
    if (req.method() !== "PUT" || partOf(req.url()) === null) return;
    puts.inFlight = Math.max(0, puts.inFlight - 1);
    const entry = open.get(req);
    if (entry) {
      entry.outcome = outcome;
      open.delete(req);
    }
    puts.notify();
  };
  page.on("requestfinished", async (req) => {
    const res = await req.response().catch(() => null);
    settle(req, res ? res.status() : "finished");
  });
  page.on("requestfailed", (req) => settle(req, "failed"));

  await page.route((url) => partOf(url.href) !== null, async (route) => {
    const req = route.request();
    if (req.method() !== "PUT") return route.fallback();
    const part = partOf(req.url());
    const entry = {
      part,
      nth: puts.log.filter((p) => p.part === part).length + 1,
      at: Date.now(),
      outcome: "pending",
    };
    puts.log.push(entry);
    open.set(req, entry);
    puts.notify();
    const handled = await puts.handler?.(entry, route);
    if (!handled) await route.continue().catch(() => {});
  });
  return puts;
}
