// Processes for the browser tests: a private redis-server, the service and the replayer, each on
// a free port of 127.0.0.1, each stopped by its own PID (never by name), and Debian's headless
// Chromium. Binaries come from the cargo target directory ($CARGO_TARGET_DIR or target/), built
// by scripts/test before this runs.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";
import { existsSync, mkdirSync, createWriteStream } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const ROOT = new URL("../../", import.meta.url).pathname;
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
/** Where the processes' logs go. */
export const LOGS = join(TARGET, "web-tests");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Debian's Chromium, headless (playwright-core never downloads a browser). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: 30_000,
  });
}

/**
 * Opens `url` in a fresh browser context (its own storage) and waits until the page is
 * connected; script errors and console errors are pushed onto `errors`.
 */
export async function openPage(browser, viewport, colorScheme, url, errors) {
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(`${viewport.width}px: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${viewport.width}px console: ${message.text()}`);
  });
  await page.goto(url);
  await page.waitForSelector('#connection[data-state="connected"]', { timeout: 15_000 });
  return page;
}

/** A binary built by cargo. */
export function binary(name) {
  const path = join(TARGET, "debug", name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run cargo build -p scoreline-service -p feed-replayer first`);
  return path;
}

/** A port nobody listens on right now. */
export async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Waits until `check()` returns a truthy value, polling; fails after `timeoutMs` naming `what`. */
export async function waitFor(what, check, timeoutMs = 30_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Every process started here, so a failing test still stops them all. */
const started = new Set();

/** Starts a process with its output in `logs/<name>.log`; returns {child, name, exited}. */
export function start(name, command, args, logDir) {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const process_ = { child, name, exited };
  started.add(process_);
  exited.then(() => started.delete(process_));
  return process_;
}

/** Stops one process: `signal` first, SIGKILL after `graceMs`; resolves when it is gone. */
export async function stop(process_, signal = "SIGTERM", graceMs = 5_000) {
  if (process_.child.exitCode !== null || process_.child.signalCode !== null) return process_.exited;
  process_.child.kill(signal);
  const timer = setTimeout(() => process_.child.kill("SIGKILL"), graceMs);
  const result = await process_.exited;
  clearTimeout(timer);
  return result;
}

/** Stops everything still running, newest first. */
export async function stopAll() {
  for (const process_ of [...started].reverse()) await stop(process_);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    for (const process_ of started) process_.child.kill("SIGKILL");
    process.exit(130);
  });
}
process.once("exit", () => {
  for (const process_ of started) process_.child.kill("SIGKILL");
});

/** Starts a private redis-server without persistence on a free port. */
export async function startRedis(logDir) {
  const port = await freePort();
  const redis = start("redis", "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], logDir);
  await waitFor("redis-server to answer", () => new Promise((resolve) => {
    const probe = spawn("redis-cli", ["-p", String(port), "ping"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    probe.stdout.on("data", (chunk) => (out += chunk));
    probe.on("exit", () => resolve(out.includes("PONG")));
  }), 15_000);
  return { ...redis, port, url: `redis://127.0.0.1:${port}/` };
}

/** Starts the service on `port` with Redis; resolves once /readyz says ready. */
export async function startService(port, redisUrl, logDir) {
  const service = start("service", binary("scoreline-service"), ["--listen", `127.0.0.1:${port}`, "--redis-url", redisUrl, "--workers", "1", "--accept-queues", "1", "--audience-interval-millis", "500"], logDir);
  await waitFor("the service to be ready", async () => {
    if (service.child.exitCode !== null) throw new Error(`the service exited with ${service.child.exitCode}; see ${logDir}/service.log`);
    const reply = await fetch(`http://127.0.0.1:${port}/readyz`);
    return reply.ok;
  }, 30_000);
  return service;
}
