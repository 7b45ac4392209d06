// What the bench measures besides time: the CPU each process used, the load the rest
// of the machine put on it, the page's memory and its main-thread long tasks.
//
// Memory. The figure the issue bounds is the page's: every byte a transfer holds in
// the renderer process (JS heap, ArrayBuffers, wasm memory, dedicated workers, which
// are threads of the same process, and the network buffers of its requests). The
// renderer's resident set is that figure. Its peak is the higher of the kernel's
// high-water mark (`VmHWM` in /proc/<pid>/status, reset with `clear_refs` at the start
// of each entry, which catches peaks between samples) and the resident set sampled
// every 100 ms (the mark alone is not enough: measured, it read below a resident set
// sampled after its reset). The alternatives measure less: CDP's
// `SystemInfo.getProcessInfo` gives each process's type and CPU time but no memory;
// `Performance.getMetrics` / `performance.memory` count the V8 heap only (not
// ArrayBuffer or wasm memory); `performance.measureUserAgentSpecificMemory()` needs a
// cross-origin-isolated page and answers late. Blob bytes are the exception: Chromium
// keeps them in the browser process (spilling to disk past a limit), so the sum of all
// Chromium processes' resident sets, sampled every 100 ms, is reported beside the
// renderer's peak; both also as growth over their value when the entry began.
//
// Long tasks: a PerformanceObserver for `longtask` (main-thread tasks over 50 ms) is
// installed in every page before its scripts run (`LONG_TASK_INIT`); each entry
// reports the tasks that began inside its measured window.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

const CLK_TCK = 100; // Linux USER_HZ
const SAMPLE_MS = 100;

// ---- processes ------------------------------------------------------------------

/**
 * { pid: { ppid, comm, cpu, reaped } } of every process now: `cpu` its own CPU seconds
 * (utime + stime), `reaped` those of the children it has waited for (cutime + cstime).
 */
function processTable() {
  const table = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(name), {
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
        reaped: (Number(fields[13]) + Number(fields[14])) / CLK_TCK,
      });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** CPU seconds the whole machine has spent busy (everything but idle and iowait). */
function machineBusySeconds() {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return (cpu.reduce((a, b) => a + b, 0) - cpu[3] - cpu[4]) / CLK_TCK;
}

/** Whether `pid` descends from this process, in `table`. */
function isOurs(table, pid) {
  for (let p = pid; p > 1 && table.has(p); p = table.get(p).ppid) if (p === process.pid) return true;
  return false;
}

/**
 * This process's descendants grouped as the report names them: the bench itself (with
 * the fault proxy, the origin and the signer, all in this process), Chromium, workerd,
 * and `extra` ({ label: [pid] }, e.g. nanio).
 */
export function processGroups(extra = {}) {
  const table = processTable();
  const groups = { "bench (node)": [process.pid], chromium: [], workerd: [], ...extra };
  const taken = new Set(Object.values(extra).flat());
  for (const [pid, { comm }] of table) {
    if (pid === process.pid || taken.has(pid) || !isOurs(table, pid)) continue;
    if (/^chrom/i.test(comm)) groups.chromium.push(pid);
    else if (/workerd/.test(comm)) groups.workerd.push(pid);
  }
  return groups;
}

/** CPU seconds used so far by each group, plus `machineBusy` and `outside the bench`. */
function cpuSnapshot(groups) {
  const table = processTable();
  const out = {};
  for (const [label, pids] of Object.entries(groups)) out[label] = pids.reduce((sum, pid) => sum + (table.get(pid)?.cpu ?? 0), 0);
  out.machineBusy = machineBusySeconds();
  return out;
}

/**
 * Starts counting CPU; `stop()` returns the cores each group used on average since
 * (1.00 = one core busy throughout), `machineBusy` and `outside` (what the rest of the
 * machine used: other work sharing it). Groups are looked up again at stop, so
 * processes started meanwhile (a stack's workerd) count from their start.
 */
export function cpuMeter(groupsFn) {
  const t0 = performance.now();
  const before = cpuSnapshot(groupsFn());
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const after = cpuSnapshot(groupsFn());
    const cores = Object.fromEntries(Object.keys(after).map((k) => [k, Math.max(0, after[k] - (before[k] ?? 0)) / wall]));
    const ours = Object.entries(cores).filter(([k]) => k !== "machineBusy").reduce((a, [, v]) => a + v, 0);
    cores.outside = Math.max(0, cores.machineBusy - ours);
    return cores;
  };
}

/**
 * The machine's load over a whole run: `stop()` returns the cores busy (all, and
 * outside the bench) on average, and the processes outside the bench that used the
 * most CPU, by name. Approximate where processes end during the run: each is counted
 * in the parent that waited for it (each rustc in cargo, a closed page's renderer in
 * Chromium), whole lifetime included, and missed when its parent ends too.
 */
export function loadMeter() {
  const start = { table: processTable(), busy: machineBusySeconds(), t: performance.now(), loadavg: loadavg() };
  return () => {
    const table = processTable();
    const wall = (performance.now() - start.t) / 1000;
    const byName = new Map();
    let ours = 0;
    for (const [pid, p] of table) {
      const before = start.table.get(pid);
      const used = p.cpu + p.reaped - (before && before.comm === p.comm ? before.cpu + before.reaped : 0);
      if (pid === process.pid || isOurs(table, pid)) ours += used;
      else byName.set(p.comm, (byName.get(p.comm) ?? 0) + used);
    }
    const busy = (machineBusySeconds() - start.busy) / wall;
    return {
      seconds: wall,
      cores: cpus().length,
      busy,
      outside: Math.max(0, busy - ours / wall),
      loadavgStart: start.loadavg,
      loadavgEnd: loadavg(),
      top: [...byName].map(([comm, s]) => ({ comm, cores: s / wall })).sort((a, b) => b.cores - a.cores).slice(0, 6),
    };
  };
}

// ---- memory ---------------------------------------------------------------------

/** Chromium's processes under this one, each with its role (browser, renderer, ...). */
function chromiumProcesses() {
  const table = processTable();
  const out = [];
  for (const [pid, { comm }] of table) {
    if (!/^chrom/i.test(comm) || !isOurs(table, pid)) continue;
    let cmdline;
    try {
      // Chromium's children rewrite their command line as one space-separated string.
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    const type = cmdline.match(/--type=([^\s\0]+)/)?.[1];
    const sub = cmdline.match(/--utility-sub-type=([^\s\0]+)/)?.[1];
    out.push({ pid, role: type ? (sub ? `${type}:${sub}` : type) : "browser" });
  }
  return out;
}

/** { VmRSS, VmHWM } in bytes of `pid`, or null once it has exited. */
function residentSet(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}

/**
 * Starts watching Chromium's memory: resets every Chromium process's peak, then samples
 * resident sets every 100 ms. `stop()` (call it before closing the page, whose renderer
 * may exit with it) returns, in bytes:
 * - `rendererPeak`: the largest renderer peak (VmHWM or sampled; the page's renderer is
 *   the one that works, any other idles), and `rendererStart`: that renderer's size at
 *   start;
 * - `chromiumPeak` / `chromiumStart`: the sum of every Chromium process's resident set,
 *   its largest sample and its first.
 */
export function memoryMeter() {
  const seen = new Map(); // pid -> { role, start, peak }
  const watch = () => {
    let total = 0;
    for (const { pid, role } of chromiumProcesses()) {
      const rs = residentSet(pid);
      if (!rs) continue;
      if (!seen.has(pid)) seen.set(pid, { role, start: rs.rss, peak: 0 });
      const p = seen.get(pid);
      p.peak = Math.max(p.peak, rs.rss, rs.hwm);
      total += rs.rss;
    }
    return total;
  };
  for (const { pid } of chromiumProcesses()) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5"); // reset VmHWM to the current RSS
    } catch {
      // exited
    }
  }
  const chromiumStart = watch();
  let chromiumPeak = chromiumStart;
  const timer = setInterval(() => { chromiumPeak = Math.max(chromiumPeak, watch()); }, SAMPLE_MS);
  return () => {
    clearInterval(timer);
    chromiumPeak = Math.max(chromiumPeak, watch());
    let renderer = null;
    for (const p of seen.values()) {
      if (p.role === "renderer" && (!renderer || p.peak > renderer.peak)) renderer = p;
    }
    return {
      rendererPeak: renderer?.peak ?? null,
      rendererStart: renderer?.start ?? null,
      chromiumPeak,
      chromiumStart,
    };
  };
}

// ---- long tasks -----------------------------------------------------------------

/** Installed in every page before its scripts (context.addInitScript). */
export function LONG_TASK_INIT() {
  window.__benchLongTasks = [];
  window.__benchLongTasksSupported = PerformanceObserver.supportedEntryTypes?.includes("longtask") ?? false;
  if (!window.__benchLongTasksSupported) return;
  const keep = (entries) => {
    for (const entry of entries) window.__benchLongTasks.push({ start: entry.startTime, duration: entry.duration });
  };
  const observer = new PerformanceObserver((list) => keep(list.getEntries()));
  observer.observe({ type: "longtask", buffered: true });
  /** Entries are delivered in a later task: let it run, then take what is still queued. */
  window.__benchFlushLongTasks = async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    keep(observer.takeRecords());
  };
}

/** The page's clock now, to open a long-task window. */
export const pageNow = (page) => page.evaluate(() => performance.now());

/** { count, totalMs, maxMs } of the page's long tasks that began at or after `since`. */
export async function longTasksSince(page, since) {
  const { supported, tasks } = await page.evaluate(async () => {
    await window.__benchFlushLongTasks?.();
    return { supported: window.__benchLongTasksSupported, tasks: window.__benchLongTasks ?? [] };
  });
  if (!supported) return null;
  const mine = tasks.filter((t) => t.start >= since);
  return {
    count: mine.length,
    totalMs: mine.reduce((a, t) => a + t.duration, 0),
    maxMs: mine.reduce((a, t) => Math.max(a, t.duration), 0),
  };
}
