/**
 * Browser-test plumbing: starts a real Banter server on a free port with a
 * fresh data directory, and opens Debian's Chromium through playwright-core.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BANTER_BIN = resolve(webDir, process.env.BANTER_BIN ?? '../target/debug/banter');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = resolve(webDir, process.env.SCREENSHOT_DIR ?? '../docs/screenshots');

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export class BanterServer {
  constructor() {
    this.proc = null;
    this.port = 0;
    this.dataDir = mkdtempSync(join(tmpdir(), 'banter-e2e-'));
    this.log = '';
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!existsSync(BANTER_BIN)) {
      throw new Error(`banter binary not found at ${BANTER_BIN} (build the server, or set BANTER_BIN)`);
    }
    if (!this.port) this.port = await freePort();
    this.proc = spawn(BANTER_BIN, ['serve'], {
      env: { ...process.env, BIND: `127.0.0.1:${this.port}`, DATA_DIR: this.dataDir, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk) => {
      this.log = (this.log + chunk).slice(-4000);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    const exited = new Promise((ok) => this.proc.once('exit', (code) => ok(code)));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const early = await Promise.race([exited, new Promise((ok) => setTimeout(() => ok('running'), 200))]);
      if (early !== 'running') throw new Error(`banter server exited with ${early} before answering /healthz:\n${this.log}`);
      try {
        const res = await fetch(`${this.base}/healthz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
    }
    await this.stop();
    throw new Error(`banter server at ${this.base} never answered GET /healthz with 200:\n${this.log}`);
  }

  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((ok) => proc.once('exit', ok));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Runs a management command (e.g. `user promote alice`) against this server's data. */
  cli(...args) {
    const r = spawnSync(BANTER_BIN, args, {
      env: { ...process.env, DATA_DIR: this.dataDir, RUST_LOG: 'warn' },
      encoding: 'utf8',
      input: '',
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`banter ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  /** A JSON call to the server from the test itself. */
  async api(path, { method = 'GET', token, body } = {}) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        ...(body ? { 'Content-Type': 'application/json' } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

/** One browser profile, as STACK.md says Chromium launches here. */
export async function openBrowser(options = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'pw-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    ...options,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  return { context, page };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/** Polls until `check` returns a truthy value. */
export async function waitUntil(check, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
}
