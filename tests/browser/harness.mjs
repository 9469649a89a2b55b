/*
 * The browser tests' harness: starts the test origin and `litchi serve` as
 * real processes, makes users, talks to the REST API, and drives Debian's
 * chromium through playwright-core. Every wait here is bounded, and every
 * process started here is stopped by `stopAll()` (the test file's `after`
 * hook) even when a test fails, so a run never leaves anything behind.
 *
 * Environment:
 *   LITCHI_BIN             the litchi binary (required)
 *   LITCHI_WEB_DIR         the built app (default <repo>/web/dist)
 *   LITCHI_ORIGIN          tests/origin/origin.py (default: the one in this repo)
 *   LITCHI_SCREENSHOT_DIR  where each test saves its screenshot (default <repo>/build/browser-screenshots)
 *   CHROMIUM               the browser (default /usr/bin/chromium)
 *   LITCHI_BROWSER_LOGS    1: echo server stderr and browser console to this process's stderr
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, createWriteStream, existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const LITCHI_BIN = process.env.LITCHI_BIN ?? ''
export const WEB_DIR = process.env.LITCHI_WEB_DIR ?? path.join(REPO, 'web', 'dist')
export const ORIGIN_SCRIPT = process.env.LITCHI_ORIGIN ?? path.join(REPO, 'tests', 'origin', 'origin.py')
export const SCREENSHOT_DIR = process.env.LITCHI_SCREENSHOT_DIR ?? path.join(REPO, 'build', 'browser-screenshots')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const VERBOSE = process.env.LITCHI_BROWSER_LOGS === '1'

/** Server flags shared by every start: four transfers at once so jobs last seconds; no automatic retry, so a flaky URL fails once and "retry failed" is what makes it pass. */
export const SERVER_FLAGS = ['--allow-private', '-j', '4', '--per-host', '4', '--retries', '0']
const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000

const running = new Set()
const scratchDirs = []

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitUntil(probe, { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await probe()
      if (last) return last
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`)
    }
    await sleep(intervalMs)
  }
}

export function scratchDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), `litchi-browser-${prefix}-`))
  scratchDirs.push(dir)
  return dir
}

// --- processes ------------------------------------------------------------

/** Spawns a child that is tracked for `stopAll()`; resolves when `ready(line)` matches a stdout line. */
function startProcess(name, command, args, { ready, logFile, env }) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const entry = { name, child, exited: false, exitCode: null, signal: null }
  running.add(entry)
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      entry.exited = true
      entry.exitCode = code
      entry.signal = signal
      running.delete(entry)
      resolve()
    })
  })
  entry.exitedPromise = exited
  const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null
  child.stderr.on('data', (chunk) => {
    log?.write(chunk)
    if (VERBOSE) process.stderr.write(`[${name}] ${chunk}`)
  })
  const lines = createInterface({ input: child.stdout })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms`))
    }, START_TIMEOUT_MS)
    let matched = false
    lines.on('line', (line) => {
      log?.write(`[stdout] ${line.replace(/token=[^\s]+/g, 'token=<redacted>')}\n`)
      if (matched) return
      const result = ready(line)
      if (result !== undefined && result !== null) {
        matched = true
        clearTimeout(timer)
        resolve({ entry, result })
      }
    })
    void exited.then(() => {
      if (matched) return
      clearTimeout(timer)
      reject(new Error(`${name} exited (code ${entry.exitCode}, signal ${entry.signal}) before it was ready${logFile ? `; see ${logFile}` : ''}`))
    })
  })
}

/** Stops one tracked child: SIGTERM, then SIGKILL after a grace period. */
async function stopEntry(entry, signal = 'SIGTERM') {
  if (entry.exited) return
  entry.child.kill(signal)
  const timer = setTimeout(() => !entry.exited && entry.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await entry.exitedPromise
  clearTimeout(timer)
}

/** Stops every child this harness started and removes scratch folders. */
export async function stopAll() {
  await Promise.all([...running].map((entry) => stopEntry(entry)))
  for (const dir of scratchDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // A file still open by a dying process: the OS cleans tmp eventually.
    }
  }
}

/** The test origin (tests/origin/origin.py): resolves to { base, stop }. */
export async function startOrigin() {
  const logFile = path.join(scratchDir('origin'), 'origin.log')
  const { entry, result } = await startProcess('origin', 'python3', [ORIGIN_SCRIPT, '--port', '0'], {
    logFile,
    ready: (line) => {
      const match = /^PORT (\d+)$/.exec(line.trim())
      return match ? Number(match[1]) : null
    },
  })
  return { base: `http://127.0.0.1:${result}`, port: result, stop: () => stopEntry(entry) }
}

/**
 * One `litchi serve` on a data folder. `start()` may be called again after
 * `kill()` to restart on the same port and data folder (the port is fixed by
 * the first start).
 */
export class LitchiServer {
  /** `webDir`: what `--web` serves (default WEB_DIR, the built app). */
  constructor(dataDir, { webDir = WEB_DIR } = {}) {
    this.webDir = webDir
    this.dataDir = dataDir ?? path.join(scratchDir('server'), 'data')
    this.logFile = path.join(path.dirname(this.dataDir), 'server.log')
    this.port = 0
    this.entry = null
  }

  get base() {
    return `http://127.0.0.1:${this.port}`
  }

  async start() {
    if (!LITCHI_BIN) throw new Error('LITCHI_BIN is not set (the built litchi binary)')
    // After a kill the port may linger for a moment; a few tries cover it.
    for (let attempt = 0; ; attempt++) {
      try {
        const { entry, result } = await startProcess(
          'litchi',
          LITCHI_BIN,
          ['serve', '--listen', `127.0.0.1:${this.port}`, '--data', this.dataDir, '--web', this.webDir, ...SERVER_FLAGS],
          {
            logFile: this.logFile,
            ready: (line) => {
              // First start (no user yet): the one-time login link comes first.
              const link = /\/login#token=(\S+)/.exec(line)
              if (link) this.linkToken = link[1]
              const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)
              return match ? Number(match[1]) : null
            },
          },
        )
        this.entry = entry
        this.port = result
        return this
      } catch (error) {
        if (attempt >= 10 || this.port === 0) throw error
        await sleep(300)
      }
    }
  }

  /** Kills the server (SIGKILL by default: a crash, no clean shutdown). */
  async kill(signal = 'SIGKILL') {
    if (!this.entry) return
    const entry = this.entry
    this.entry = null
    entry.child.kill(signal)
    await entry.exitedPromise
  }

  async stop() {
    if (!this.entry) return
    const entry = this.entry
    this.entry = null
    await stopEntry(entry)
  }

  /** `litchi user add NAME --data DIR`, password on stdin. */
  addUser(name, password) {
    const result = spawnSync(LITCHI_BIN, ['user', 'add', name, '--data', this.dataDir], {
      input: `${password}\n`,
      encoding: 'utf8',
      timeout: 30_000,
    })
    if (result.status !== 0) {
      throw new Error(`litchi user add ${name} failed (status ${result.status}): ${result.stderr || result.error}`)
    }
  }
}

// --- REST -----------------------------------------------------------------

/** A signed-in REST client: POST /api/login once, then the bearer token on every call. */
export class ApiClient {
  constructor(base) {
    this.base = base
    this.token = null
  }

  async login(username, password) {
    const response = await fetch(`${this.base}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
      signal: AbortSignal.timeout(10_000),
    })
    if (!response.ok) throw new Error(`POST /api/login: HTTP ${response.status} ${await response.text()}`)
    const body = await response.json()
    if (typeof body.token !== 'string') throw new Error('POST /api/login: no token in the answer')
    this.token = body.token
    return this
  }

  async call(method, urlPath, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    const response = await fetch(`${this.base}${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${urlPath}: HTTP ${response.status} ${text.slice(0, 300)}`)
    return text ? JSON.parse(text) : null
  }

  createJob(urls, name) {
    return this.call('POST', '/api/jobs', name ? { urls, name } : { urls })
  }

  getJob(id) {
    return this.call('GET', `/api/jobs/${encodeURIComponent(id)}`)
  }

  /** Waits until the job is no longer queued/running/paused; returns it. */
  waitFinished(id, timeoutMs = 60_000) {
    return waitUntil(
      async () => {
        const job = await this.getJob(id)
        return ['done', 'cancelled'].includes(job.state) ? job : null
      },
      { timeoutMs, intervalMs: 200, what: `job ${id} to finish (REST)` },
    )
  }
}

/** `count` image URLs on the origin, each delayed `delayMs`, labels unique to `tag`. */
export function imageUrls(origin, tag, count, delayMs) {
  return Array.from({ length: count }, (_, i) => `${origin.base}/img/${tag}-${i}.png?delay=${delayMs}`)
}

export function uniqueTag(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
}

// --- browser --------------------------------------------------------------

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * Debian's chromium, headless. `launch()` gives every browser a fresh
 * temporary --user-data-dir of its own (removed on close), and every test
 * a fresh context (cookies, storage).
 */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`)
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
}

export async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 820 }, deviceScaleFactor: 1 })
  context.setDefaultTimeout(15_000)
  context.setDefaultNavigationTimeout(20_000)
  return context
}

/** Console errors and page crashes, echoed when LITCHI_BROWSER_LOGS=1 and kept for failures. */
export function watchPage(page, label) {
  const problems = []
  page.on('pageerror', (error) => {
    problems.push(`pageerror: ${error.message}`)
    if (VERBOSE) process.stderr.write(`[${label}] pageerror: ${error.message}\n`)
  })
  page.on('console', (message) => {
    if (VERBOSE) process.stderr.write(`[${label}] console.${message.type()}: ${message.text()}\n`)
  })
  return problems
}

/** Signs in through the Login page's form, then waits for the app to leave /login. */
export async function signIn(page, base, username, password, next = '/jobs') {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`)
  await page.locator('input[name="username"]').fill(username)
  await page.locator('input[name="password"]').fill(password)
  await page.locator('form button[type="submit"]').click()
  await page.waitForURL((url) => url.pathname === next, { timeout: 15_000 })
}

/**
 * Records every value the job page's main bar (the first [role=progressbar])
 * takes, in Node, across navigations and reloads: a MutationObserver in each
 * document reports each change through an exposed binding.
 * Returns the array of samples { t, doc, value, text, path } (t: epoch ms;
 * doc: the document's time origin, which tells one page load from the next).
 */
export async function recordJobBar(page) {
  const samples = []
  await page.exposeBinding('__litchiBarSample', (_source, sample) => {
    samples.push(sample)
  })
  await page.addInitScript(() => {
    let last = null
    const sample = () => {
      if (!/^\/jobs\/(?!new$)[^/]+$/.test(location.pathname)) {
        last = null
        return
      }
      const bar = document.querySelector('main [role="progressbar"]')
      if (!bar) return
      const value = Number(bar.getAttribute('aria-valuenow'))
      const text = bar.getAttribute('aria-valuetext')
      const key = `${location.pathname}|${value}|${text}`
      if (key === last) return
      last = key
      window.__litchiBarSample({
        t: performance.timeOrigin + performance.now(),
        doc: performance.timeOrigin,
        value,
        text,
        path: location.pathname,
      })
    }
    new MutationObserver(sample).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['aria-valuenow', 'aria-valuetext'],
    })
  })
  return samples
}

/** Fails when any recorded value is lower than the one before it. */
export function assertNeverDecreases(samples, assert) {
  for (let i = 1; i < samples.length; i++) {
    assert.ok(
      samples[i].value >= samples[i - 1].value,
      `the bar went down from ${samples[i - 1].value} to ${samples[i].value} (sample ${i} of ${samples.length})`,
    )
  }
}

/** What the job page shows: the main bar and the counts. */
export async function readJobPage(page) {
  return page.evaluate(() => {
    const bar = document.querySelector('main [role="progressbar"]')
    const count = (name) => {
      const text = document.querySelector(`main [data-count="${name}"]`)?.textContent ?? ''
      const digits = text.replace(/[^0-9]/g, '')
      return digits === '' ? null : Number(digits)
    }
    return {
      value: bar ? Number(bar.getAttribute('aria-valuenow')) : null,
      text: bar?.getAttribute('aria-valuetext') ?? null,
      state: document.querySelector('main [data-job-state]')?.textContent?.trim() ?? null,
      done: count('done'),
      failed: count('failed'),
      left: count('left'),
      total: count('total'),
      connection: document.querySelector('[data-connection]')?.getAttribute('data-connection') ?? null,
    }
  })
}

export async function connectionState(page) {
  return page.locator('[data-connection]').first().getAttribute('data-connection')
}

/** Waits until the job page shows the job finished (state done) and returns what it shows. */
export async function waitJobPageFinished(page, timeoutMs = 60_000) {
  return waitUntil(
    async () => {
      const shown = await readJobPage(page)
      return shown.state === 'done' && shown.left === 0 ? shown : null
    },
    { timeoutMs, intervalMs: 150, what: 'the job page to show the job done' },
  )
}

/**
 * Compares the page's numbers with the server's job (REST): they must match
 * exactly, and the bar must read 100 with "N of N images".
 */
export function assertPageMatchesJob(shown, job, assert, label = 'page') {
  const counts = job.counts
  assert.equal(shown.state, job.state, `${label}: state`)
  assert.equal(shown.total, counts.total, `${label}: total`)
  assert.equal(shown.done, counts.done, `${label}: done`)
  assert.equal(shown.failed, counts.failed, `${label}: failed`)
  assert.equal(shown.left, counts.total - counts.done - counts.failed - counts.cancelled, `${label}: left`)
  const finished = counts.done + counts.failed + counts.cancelled
  assert.equal(shown.value, counts.total > 0 ? Math.floor((finished * 100) / counts.total) : 100, `${label}: aria-valuenow`)
  const format = (n) => n.toLocaleString('en-US')
  assert.equal(shown.text, `${format(finished)} of ${format(counts.total)} images`, `${label}: aria-valuetext`)
}

/** Saves `<n>-<name>.png` (viewport only, so the file stays small). */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true })
  const file = path.join(SCREENSHOT_DIR, `${name}.png`)
  await page.screenshot({ path: file, fullPage: false, animations: 'disabled', caret: 'hide' })
  return { file, bytes: statSync(file).size }
}

/**
 * Every WebSocket the page opens, with the frames it sent and the `type` of
 * each frame it received (page.on('websocket') sees sockets of every
 * document the page loads).
 */
export function trackSockets(page) {
  const sockets = []
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), sent: [], receivedTypes: [], closed: false }
    sockets.push(entry)
    ws.on('framesent', (frame) => entry.sent.push(String(frame.payload)))
    ws.on('framereceived', (frame) => {
      let type = '?'
      try {
        type = JSON.parse(String(frame.payload)).type ?? '?'
      } catch {
        type = 'not-json'
      }
      entry.receivedTypes.push(type)
    })
    ws.on('close', () => (entry.closed = true))
  })
  return sockets
}

/** The live numbers came over a WebSocket: some socket got the server's `hello`. */
export function assertUsedWebSocket(sockets, assert) {
  const summary = JSON.stringify(sockets.map((s) => ({ url: s.url, got: s.receivedTypes.slice(0, 5) })))
  assert.ok(sockets.length > 0, 'the app opened a WebSocket')
  assert.ok(
    sockets.some((s) => s.receivedTypes.includes('hello')),
    `a WebSocket carried the progress (hello received); sockets: ${summary}`,
  )
}

// --- accessibility ------------------------------------------------------------

let axeSource = null

/**
 * Runs axe-core (npm, loaded into the page) against the current document with
 * the WCAG 2.0/2.1 A and AA rules; returns the violations as
 * [{ id, impact, help, targets: [selector…], summary }].
 */
export async function runAxe(page) {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.addScriptTag({ content: axeSource })
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      resultTypes: ['violations'],
    })
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
      summary: v.nodes.map((n) => n.failureSummary).slice(0, 3),
    }))
  })
}
