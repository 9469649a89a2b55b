/*
 * The litchi-client README's "Show progress in your own page" example, for
 * real: the HTML block is cut from clients/js/README.md as it stands, served
 * by a real `litchi serve --web DIR` beside the package's built dist/
 * (clients/js/dist, copied to DIR/litchi-client/ as the README says), and
 * opened in Debian's chromium with `#job=ID&token=T`. The job waits paused
 * until the page shows it; once resumed the page must show its progress live
 * (values between 0 and 100 on the way, never going down) over
 * a WebSocket, end with the server's exact counts, and say "no such job" for
 * an id that does not exist. Run by run.sh.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  ApiClient,
  LitchiServer,
  REPO,
  assertUsedWebSocket,
  imageUrls,
  launchBrowser,
  newContext,
  scratchDir,
  screenshot,
  startOrigin,
  stopAll,
  trackSockets,
  uniqueTag,
  waitUntil,
  watchPage,
} from './harness.mjs'

const TEST_TIMEOUT_MS = 120_000
const README = path.join(REPO, 'clients', 'js', 'README.md')
const PACKAGE_DIST = path.join(REPO, 'clients', 'js', 'dist')

/** The first ```html block after the "Show progress in your own page" heading. */
function readmeExample() {
  const text = readFileSync(README, 'utf8')
  const section = text.indexOf('## Show progress in your own page')
  assert.ok(section >= 0, 'the README has a "Show progress in your own page" section')
  const match = /```html\n([\s\S]*?)```/.exec(text.slice(section))
  assert.ok(match, 'that section holds an html code block')
  return match[1]
}

/** A --web folder: the example as progress.html, the package's dist/ as litchi-client/. */
function exampleSite() {
  assert.ok(existsSync(path.join(PACKAGE_DIST, 'index.js')), `${PACKAGE_DIST} is built (npm run build in clients/js)`)
  const dir = scratchDir('example-site')
  writeFileSync(path.join(dir, 'progress.html'), readmeExample())
  cpSync(PACKAGE_DIST, path.join(dir, 'litchi-client'), { recursive: true })
  return dir
}

/** Every value the example's <progress> and text take, recorded in the page as they change. */
async function recordExample(page) {
  await page.addInitScript(() => {
    window.__samples = []
    const sample = () => {
      const bar = document.getElementById('bar')
      const text = document.getElementById('text')
      if (!bar || !text) return
      const entry = { value: bar.value, text: text.textContent }
      const last = window.__samples.at(-1)
      if (!last || last.value !== entry.value || last.text !== entry.text) window.__samples.push(entry)
    }
    new MutationObserver(sample).observe(document, { subtree: true, childList: true, characterData: true, attributes: true })
  })
  return () => page.evaluate(() => window.__samples)
}

let origin
let browser
let server
let api

describe('litchi-client README example', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    origin = await startOrigin()
    browser = await launchBrowser()
    server = await new LitchiServer(undefined, { webDir: exampleSite() }).start()
    server.addUser('reader', 'example-password-1')
    api = await new ApiClient(server.base).login('reader', 'example-password-1')
  })

  after(async () => {
    await browser?.close().catch(() => {})
    await stopAll()
  })

  test('shows a job live from 0 to its exact end over a WebSocket', { timeout: TEST_TIMEOUT_MS }, async () => {
    const tag = uniqueTag('ex')
    // 16 images, 4 at a time, 800 ms each: over 3 s of progress once resumed.
    // Paused at once (its transfers go back to the queue), so however slow the
    // page is to load, the job only runs once the page shows it.
    const job = await api.createJob(imageUrls(origin, tag, 16, 800), 'readme example')
    await api.call('POST', `/api/jobs/${encodeURIComponent(job.id)}/pause`)
    const context = await newContext(browser)
    const page = await context.newPage()
    const problems = watchPage(page, 'example')
    const sockets = trackSockets(page)
    const samples = await recordExample(page)

    await page.goto(`${server.base}/progress.html#job=${encodeURIComponent(job.id)}&token=${encodeURIComponent(api.token)}`)
    await waitUntil(async () => /^\d+ of 16 images, paused$/.test((await page.locator('#text').textContent()) ?? ''), {
      what: 'the example page to show the paused job',
    })
    await api.call('POST', `/api/jobs/${encodeURIComponent(job.id)}/resume`)
    const finished = await api.waitFinished(job.id)
    const counts = finished.counts
    const endText = `${counts.done} of ${counts.total} images, ${finished.state}`
    await waitUntil(async () => (await page.locator('#text').textContent()) === endText, {
      what: `the example page to read "${endText}"`,
    })
    assert.equal(counts.done, 16, 'every image downloaded')
    assert.equal(await page.locator('#bar').evaluate((bar) => bar.value), 100)

    const seen = await samples()
    const values = seen.map((s) => s.value)
    assert.ok(
      values.some((v) => v > 0 && v < 100),
      `the page showed progress on the way, not only the end: ${JSON.stringify(seen)}`,
    )
    for (let i = 1; i < values.length; i++) assert.ok(values[i] >= values[i - 1], `the bar went down: ${JSON.stringify(values)}`)
    assertUsedWebSocket(sockets, assert)
    assert.deepEqual(problems, [], 'no script errors on the page')
    await screenshot(page, '8-client-example')
    await context.close()
  })

  test('says "no such job" for a job id the server does not have', { timeout: TEST_TIMEOUT_MS }, async () => {
    const context = await newContext(browser)
    const page = await context.newPage()
    const problems = watchPage(page, 'example-missing')
    await page.goto(`${server.base}/progress.html#job=999999&token=${encodeURIComponent(api.token)}`)
    await waitUntil(async () => (await page.locator('#text').textContent()) === 'no such job', {
      what: 'the example page to say "no such job"',
    })
    assert.equal(await page.locator('#bar').evaluate((bar) => bar.value), 0)
    assert.deepEqual(problems, [], 'no script errors on the page')
    await context.close()
  })
})
