// Pages and the measured window every browser entry runs in.
import { cpuMeter, longTasksSince, memoryMeter, pageNow } from "./measure.mjs";

/**
 * A page at `url` whose #file input holds `filePath` (a disk-backed File, as a user's
 * pick is), with the long-task observer already installed (context init script).
 */
export async function pageWithFile(ctx, url, filePath = ctx.filePath) {
  const page = await ctx.browser.newPage();
  await page.goto(url);
  await page.evaluate(() => {
    if (!document.getElementById("file")) {
      document.body.append(Object.assign(document.createElement("input"), { type: "file", id: "file" }));
    }
  });
  await page.setInputFiles("#file", filePath);
  return page;
}

/**
 * Runs `work()` (which drives `page`) and returns its result with what was measured
 * meanwhile: `cpu` (cores per process group), `memory` (measure.mjs memoryMeter) and
 * `longTasks` (those that began during the work).
 *
 * The function `work` evaluates in the page must begin with
 * `await new Promise((resolve) => setTimeout(resolve))`: code that runs inside the CDP
 * call page.evaluate makes is no task to the longtask observer (measured: a 3.7 s
 * synchronous loop reported nothing), so the work must start in an ordinary task.
 */
export async function measuredInPage(ctx, page, work) {
  const since = await pageNow(page);
  const cpu = cpuMeter(ctx.groups);
  const memory = memoryMeter();
  const result = await work();
  return { ...result, memory: memory(), cpu: cpu(), longTasks: await longTasksSince(page, since) };
}

/** Runs `work()` outside the browser and adds the CPU it took (`cpu`). */
export async function measured(ctx, work) {
  const cpu = cpuMeter(ctx.groups);
  const result = await work();
  return { ...result, cpu: cpu() };
}
