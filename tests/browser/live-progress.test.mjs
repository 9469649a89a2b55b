/*
 * The web app's live progress in a real browser (issue 5's seven scenarios):
 * Debian's chromium driven by playwright-core, against a real `litchi serve`
 * (fresh data folder and user per test) and the test origin, whose
 * ?delay=MS makes each job last a few seconds.
 *
 *   1. a job goes 0 → 100 %, the bar's aria-valuenow never goes down
 *   2. router navigation away and back mid-job: one WebSocket in the whole session, numbers kept moving
 *   3. reload mid-job: last numbers paint before the socket opens, first frame sent is `resume`, end exact
 *   4. server SIGKILLed and restarted mid-job: "reconnecting" shows, then exact counts
 *   5. WebSocket refused (page.routeWebSocket): SSE or polling takes over, the job completes on screen
 *   6. two tabs watch one job and both end exact
 *   7. failed items: the failed list shows reasons; "retry failed" requeues them and they pass
 *
 * Each test saves a screenshot (harness SCREENSHOT_DIR). Run by run.sh.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  ApiClient,
  LitchiServer,
  assertNeverDecreases,
  assertPageMatchesJob,
  assertUsedWebSocket,
  connectionState,
  imageUrls,
  launchBrowser,
  newContext,
  readJobPage,
  recordJobBar,
  screenshot,
  signIn,
  sleep,
  startOrigin,
  stopAll,
  trackSockets,
  uniqueTag,
  waitJobPageFinished,
  waitUntil,
  watchPage,
} from './harness.mjs'

const USER = 'alice'
const PASSWORD = 'correct horse battery staple'
const TEST_TIMEOUT_MS = 150_000

let origin
let browser

/** A fresh server with one user, a signed-in REST client and a browser context; all closed afterwards. */
async function withSession(body) {
  const server = new LitchiServer()
  server.addUser(USER, PASSWORD)
  await server.start()
  const api = await new ApiClient(server.base).login(USER, PASSWORD)
  const context = await newContext(browser)
  try {
    await body({ server, api, context })
  } finally {
    await context.close().catch(() => {})
    await server.stop()
  }
}

/** The job page's bar value, once it exists. */
async function barValue(page) {
  return (await readJobPage(page)).value
}

/** Waits until the job page's bar is within [low, high] (the job is mid-way). */
function waitBarBetween(page, low, high, timeoutMs = 30_000) {
  return waitUntil(
    async () => {
      const value = await barValue(page)
      return value !== null && value >= low && value <= high ? value : null
    },
    { timeoutMs, intervalMs: 50, what: `the bar to read between ${low} and ${high}` },
  )
}

/** Opens the job from the Jobs page by clicking its card's link (router navigation, no page load). */
async function openJobFromList(page, jobId) {
  const link = page.locator(`[data-job-id="${jobId}"] a`).first()
  await link.waitFor({ state: 'visible', timeout: 15_000 })
  await link.click()
  await page.waitForURL((url) => url.pathname === `/jobs/${jobId}`)
  await page.locator('main [role="progressbar"]').first().waitFor({ timeout: 15_000 })
}

describe('web app live progress', { timeout: 8 * TEST_TIMEOUT_MS }, () => {
  before(async () => {
    origin = await startOrigin()
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close().catch(() => {})
    await stopAll()
  })

  test('1: a job goes from 0 to 100 % and the bar never goes down', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test1')
      const sockets = trackSockets(page)
      const samples = await recordJobBar(page)
      await signIn(page, server.base, USER, PASSWORD)

      // Through the New job page, as a person would.
      await page.locator('nav a[href="/jobs/new"]').click()
      await page.waitForURL((url) => url.pathname === '/jobs/new')
      const urls = imageUrls(origin, uniqueTag('one'), 32, 500)
      await page.locator('input[name="name"]').fill('Holiday photos')
      await page.locator('textarea[name="urls"]').fill(urls.join('\n'))
      await waitUntil(async () => (await page.locator('[data-valid-count]').textContent()) === '32', {
        what: 'the New job page to count 32 valid URLs',
      })
      await page.locator('form button[type="submit"]').click()
      await page.waitForURL((url) => /^\/jobs\/(?!new$)[^/]+$/.test(url.pathname))
      const jobId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())

      await waitBarBetween(page, 30, 75)
      await sleep(300)
      const shot = await screenshot(page, '1-job-progress')

      const shown = await waitJobPageFinished(page)
      const job = await api.getJob(jobId)
      assertPageMatchesJob(shown, job, assert)
      assert.equal(job.counts.done, 32, 'every image downloaded')

      // The live grid shows the downloaded images (virtualised: the rows in view).
      const loadedThumbs = () =>
        page.evaluate(
          () => [...document.querySelectorAll('.thumbs__tile img')].filter((img) => img.complete && img.naturalWidth > 0).length,
        )
      await waitUntil(async () => (await loadedThumbs()) >= 12, { timeoutMs: 20_000, what: 'at least 12 thumbnails on screen' })

      const forJob = samples.filter((s) => s.path === `/jobs/${encodeURIComponent(jobId)}`)
      assert.ok(forJob.length >= 4, `the bar moved in steps (saw ${forJob.map((s) => s.value).join(', ')})`)
      assert.equal(forJob[0].value, 0, 'the bar starts at 0')
      assert.equal(forJob.at(-1).value, 100, 'the bar ends at 100')
      assertNeverDecreases(forJob, assert)
      assert.match(await page.title(), /^\(100%\) Holiday photos · Litchi$/, "the title names the job")
      assertUsedWebSocket(sockets, assert)
      assert.deepEqual(problems, [], 'no script errors on the page')
      assert.ok(shot.bytes < 300_000, `screenshot ${shot.file} is ${shot.bytes} bytes`)
    })
  })

  test('2: going to another page and back keeps one WebSocket and live numbers', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test2')
      const sockets = trackSockets(page)
      const samples = await recordJobBar(page)
      await signIn(page, server.base, USER, PASSWORD)

      // An earlier, small job (done in a moment) so the Jobs page lists more than one.
      const earlier = await api.createJob(imageUrls(origin, uniqueTag('two-earlier'), 4, 0), 'Earlier batch')
      await api.waitFinished(earlier.id)
      const job = await api.createJob(imageUrls(origin, uniqueTag('two'), 48, 500), 'Navigation test')
      const jobPath = `/jobs/${encodeURIComponent(job.id)}`
      await openJobFromList(page, job.id)
      const before = await waitBarBetween(page, 10, 50)

      // Away: Settings, then the Jobs list (whose card must show the job moving), then back.
      const refetches = []
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === `/api/jobs/${encodeURIComponent(job.id)}`) refetches.push(request.url())
      })
      await page.locator('nav a[href="/settings"]').click()
      await page.waitForURL((url) => url.pathname === '/settings')
      await sleep(1_200)
      await page.locator('nav a[href="/jobs"]').click()
      await page.waitForURL((url) => url.pathname === '/jobs')
      const card = page.locator(`[data-job-id="${job.id}"] [role="progressbar"]`)
      const onList = Number(await card.getAttribute('aria-valuenow'))
      assert.ok(onList > before, `the Jobs page shows the job further on (${onList} > ${before})`)
      await sleep(300)
      const shot = await screenshot(page, '2-jobs-list')

      const returnedAt = Date.now()
      await openJobFromList(page, job.id)
      const firstBack = await barValue(page)
      assert.ok(Date.now() - returnedAt < 5_000)
      assert.ok(firstBack >= onList, `back on the job page at once with current numbers (${firstBack} >= ${onList})`)
      // (Once finished, the page reads the job once for its finish time; that is not the way back.)
      assert.deepEqual(refetches, [], 'the job was not fetched again on the way back')

      const shown = await waitJobPageFinished(page)
      assertPageMatchesJob(shown, await api.getJob(job.id), assert)
      assert.equal(sockets.length, 1, `exactly one WebSocket in the whole session (saw ${sockets.length})`)
      assertUsedWebSocket(sockets, assert)
      assert.equal(sockets[0].closed, false, 'the one socket is still open')
      assertNeverDecreases(samples.filter((s) => s.path === jobPath), assert)
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
    })
  })

  test('3: a reload paints the last numbers before the socket opens, then resumes exactly', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test3')
      const samples = await recordJobBar(page)
      // Each document logs its sockets: when opened, and what the bar read at that moment.
      await page.addInitScript(() => {
        const NativeWebSocket = window.WebSocket
        const log = (window.__litchiSockets = [])
        const readBar = () => {
          const bar = document.querySelector('main [role="progressbar"]')
          return bar ? Number(bar.getAttribute('aria-valuenow')) : null
        }
        const now = () => performance.timeOrigin + performance.now()
        document.addEventListener('DOMContentLoaded', () => (window.__litchiBarAtDomContentLoaded = readBar()))
        window.WebSocket = class extends NativeWebSocket {
          constructor(url, protocols) {
            super(url, protocols)
            const entry = { url: String(url), createdAt: now(), barAtCreate: readBar() }
            log.push(entry)
            this.addEventListener('open', () => {
              entry.openAt = now()
              entry.barAtOpen = readBar()
            })
            this.addEventListener('message', () => {
              if (entry.firstMessageAt !== undefined) return
              entry.firstMessageAt = now()
              entry.barAtFirstMessage = readBar()
            })
          }
        }
      })
      const sockets = trackSockets(page)
      await signIn(page, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('three'), 48, 500), 'Reload test')
      const jobPath = `/jobs/${encodeURIComponent(job.id)}`
      await openJobFromList(page, job.id)
      await waitBarBetween(page, 20, 60)

      const beforeReload = await readJobPage(page)
      const socketsBefore = sockets.length
      await page.reload({ waitUntil: 'domcontentloaded' })
      const log = await waitUntil(
        async () => {
          const entries = await page.evaluate(() => window.__litchiSockets)
          return entries?.length > 0 && entries[0].openAt !== undefined ? entries : null
        },
        { timeoutMs: 15_000, what: 'the new socket to open' },
      )
      const shot = await screenshot(page, '3-after-reload')

      const opened = log[0]
      assert.ok(
        opened.barAtOpen !== null && opened.barAtOpen >= beforeReload.value && opened.barAtOpen > 0,
        `when the socket opened the bar already read ${opened.barAtOpen} (before reload ${beforeReload.value})`,
      )
      const atDomContentLoaded = await page.evaluate(() => window.__litchiBarAtDomContentLoaded)
      assert.ok(
        atDomContentLoaded >= beforeReload.value && atDomContentLoaded > 0,
        `at DOMContentLoaded the bar read ${atDomContentLoaded} (before reload ${beforeReload.value})`,
      )
      const newDocument = await page.evaluate(() => performance.timeOrigin)
      const afterReload = samples.filter((s) => s.path === jobPath && s.doc === newDocument)
      assert.ok(afterReload.length > 0, 'the bar was drawn after the reload')
      assert.ok(
        afterReload[0].t <= opened.openAt,
        `the restored bar (${afterReload[0].value}) was drawn ${Math.round(opened.openAt - afterReload[0].t)} ms before the socket opened`,
      )
      assert.ok(afterReload[0].value >= beforeReload.value, `restored value ${afterReload[0].value} >= ${beforeReload.value}`)

      const fresh = sockets[socketsBefore]
      assert.ok(fresh, 'a new WebSocket was opened after the reload')
      await waitUntil(() => fresh.sent.length > 0, { timeoutMs: 10_000, what: 'a frame on the new socket' })
      const first = JSON.parse(fresh.sent[0])
      assert.equal(first.type, 'resume', `first frame on the new socket: ${fresh.sent[0]}`)
      assert.ok(Number.isInteger(first.since) && first.since >= 0, `resume since ${first.since}`)

      const shown = await waitJobPageFinished(page)
      assertPageMatchesJob(shown, await api.getJob(job.id), assert)
      assertNeverDecreases(samples.filter((s) => s.path === jobPath), assert)
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
    })
  })

  test('4: the server is killed and restarted mid-job; the page reconnects and ends exact', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test4')
      const sockets = trackSockets(page)
      const samples = await recordJobBar(page)
      await signIn(page, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('four'), 48, 500), 'Restart test')
      const jobPath = `/jobs/${encodeURIComponent(job.id)}`
      await openJobFromList(page, job.id)
      await waitUntil(async () => (await connectionState(page)) === 'live', { what: 'data-connection=live' })
      await waitBarBetween(page, 10, 60)

      const socketsBeforeKill = sockets.length
      await server.kill('SIGKILL')
      await waitUntil(async () => (await connectionState(page)) === 'reconnecting', {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'data-connection=reconnecting after the kill',
      })
      await sleep(400)
      const shot = await screenshot(page, '4-reconnecting')
      const duringOutage = await readJobPage(page)
      assert.ok(duringOutage.value > 0, 'the numbers stay on screen while the server is down')

      await server.start()
      await waitUntil(async () => (await connectionState(page)) === 'live', {
        timeoutMs: 45_000,
        what: 'data-connection=live after the restart',
      })
      const shown = await waitJobPageFinished(page)
      const finished = await api.getJob(job.id)
      assertPageMatchesJob(shown, finished, assert)
      assert.equal(finished.counts.done, 48, 'every image counted once after the restart')
      assertUsedWebSocket(sockets, assert)
      const reopened = sockets.slice(socketsBeforeKill).find((s) => s.receivedTypes.length > 0)
      assert.ok(reopened, 'a new WebSocket carried the progress after the restart')
      assert.equal(JSON.parse(reopened.sent[0] ?? '{}').type, 'resume', `first frame after the restart: ${reopened.sent[0]}`)
      assertNeverDecreases(samples.filter((s) => s.path === jobPath), assert)
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
    })
  })

  test('5: with the WebSocket refused, SSE or polling carries the job to the end', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test5')
      const samples = await recordJobBar(page)
      let refused = 0
      await page.routeWebSocket(/\/api\/ws$/, async (ws) => {
        refused++
        await ws.close({ code: 1008, reason: 'refused by the test' })
      })
      const fallbackRequests = new Set()
      page.on('request', (request) => {
        const { pathname } = new URL(request.url())
        if (pathname === '/api/events') fallbackRequests.add('sse')
        if (/^\/api\/jobs\/[^/]+\/progress$/.test(pathname)) fallbackRequests.add('poll')
      })
      await signIn(page, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('five'), 32, 500), 'Fallback test')
      const jobPath = `/jobs/${encodeURIComponent(job.id)}`
      await openJobFromList(page, job.id)
      await waitUntil(async () => (await connectionState(page)) === 'live', {
        timeoutMs: 30_000,
        what: 'data-connection=live on a fallback transport',
      })
      await waitBarBetween(page, 1, 90)
      const shot = await screenshot(page, '5-fallback')

      const shown = await waitJobPageFinished(page)
      assertPageMatchesJob(shown, await api.getJob(job.id), assert)
      assert.ok(refused >= 1, 'the app tried the WebSocket')
      assert.ok(fallbackRequests.size > 0, 'SSE (/api/events) or polling (/api/jobs/{id}/progress) was used')
      const moving = samples.filter((s) => s.path === jobPath)
      assert.ok(moving.length >= 3, `the bar moved on the fallback (${moving.map((s) => s.value).join(', ')})`)
      assertNeverDecreases(moving, assert)
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
      console.log(`# test 5: WebSocket refused ${refused}×; fallback used: ${[...fallbackRequests].join(', ')}`)
    })
  })

  test('6: two tabs watch the same job and both end exact', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const first = await context.newPage()
      const problems = [...watchPage(first, 'tab1')]
      const firstSockets = trackSockets(first)
      await signIn(first, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('six'), 40, 500), 'Two tabs')
      const jobPath = `/jobs/${encodeURIComponent(job.id)}`
      await openJobFromList(first, job.id)

      // The second tab is phone-sized: the same numbers on a narrow layout.
      const second = await context.newPage()
      await second.setViewportSize({ width: 390, height: 844 })
      problems.push(...watchPage(second, 'tab2'))
      const secondSockets = trackSockets(second)
      const secondSamples = await recordJobBar(second)
      await second.goto(`${server.base}${jobPath}`)
      await second.locator('main [role="progressbar"]').first().waitFor()
      await waitBarBetween(second, 20, 80)
      const shot = await screenshot(second, '6-second-tab-phone')

      const [shownFirst, shownSecond] = await Promise.all([waitJobPageFinished(first), waitJobPageFinished(second)])
      const finished = await api.getJob(job.id)
      assertPageMatchesJob(shownFirst, finished, assert, 'tab 1')
      assertPageMatchesJob(shownSecond, finished, assert, 'tab 2')
      assertUsedWebSocket(firstSockets, assert)
      assertUsedWebSocket(secondSockets, assert)
      assertNeverDecreases(secondSamples.filter((s) => s.path === jobPath), assert)
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
    })
  })

  test('7: failed items are listed by reason and "retry failed" requeues them', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'test7')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('seven')
      // Flaky: 503 for the first request of each key, then the image: the server
      // runs without automatic retries, so only "retry failed" makes them pass.
      const flakyKeys = [0, 1, 2].map((i) => `${tag}-flaky-${i}`)
      const urls = [
        ...imageUrls(origin, tag, 6, 200),
        `${origin.base}/status/404?n=1`,
        `${origin.base}/status/404?n=2`,
        `${origin.base}/html-as-png.png`,
        ...flakyKeys.map((key, i) => `${origin.base}/flaky/${key}/1/${tag}-f${i}.png?delay=100`),
      ]
      const job = await api.createJob(urls, 'Some broken links')
      await openJobFromList(page, job.id)

      const firstRun = await waitJobPageFinished(page)
      const afterFirst = await api.getJob(job.id)
      assertPageMatchesJob(firstRun, afterFirst, assert, 'first run')
      assert.deepEqual([afterFirst.counts.done, afterFirst.counts.failed], [6, 6], 'six done, six failed at first')

      // The failed list: one group per reason, with the items' URLs and HTTP statuses.
      const groups = page.locator('[data-reason]')
      await waitUntil(async () => (await groups.count()) === 2, { what: 'two failure groups (http, not_image)' })
      const reasonCounts = async () =>
        Object.fromEntries(
          await groups.evaluateAll((nodes) =>
            nodes.map((node) => [node.getAttribute('data-reason'), Number(node.querySelector('.failures__count')?.textContent)]),
          ),
        )
      assert.deepEqual(await reasonCounts(), { http: 5, not_image: 1 })
      await page.locator('[data-reason="http"] button').first().click()
      await page.locator('[data-reason="not_image"] button').first().click()
      const httpGroup = page.locator('[data-reason="http"]')
      await waitUntil(async () => (await httpGroup.textContent()).includes('/status/404'), {
        what: 'the http group to list /status/404',
      })
      const httpText = await httpGroup.textContent()
      assert.match(httpText, /404/)
      assert.match(httpText, /503/)
      assert.match(httpText, /\/flaky\//)
      assert.match(await page.locator('[data-reason="not_image"]').textContent(), /html-as-png/)
      await page.locator('#failed-title').scrollIntoViewIfNeeded()
      const shot = await screenshot(page, '7-failed-list')

      await page.locator('[data-action="retry-failed"]').click()
      // The three flaky items pass the second time; the 404s and the HTML page fail again.
      const secondRun = await waitUntil(
        async () => {
          const shown = await readJobPage(page)
          return shown.state === 'done' && shown.done === 9 && shown.left === 0 ? shown : null
        },
        { timeoutMs: 60_000, what: 'the retried job to end with 9 done' },
      )
      const afterRetry = await api.waitFinished(job.id)
      assertPageMatchesJob(secondRun, afterRetry, assert, 'after retry')
      assert.deepEqual([afterRetry.counts.done, afterRetry.counts.failed], [9, 3])
      await waitUntil(async () => JSON.stringify(await reasonCounts()) === JSON.stringify({ http: 2, not_image: 1 }), {
        what: 'the failed list to hold the two 404s and the HTML page',
      })
      for (const key of flakyKeys) {
        const hits = await (await fetch(`${origin.base}/hits/${key}`)).json()
        assert.equal(hits.count, 2, `${key}: one failed request, then one after "retry failed"`)
      }
      assert.deepEqual(problems, [])
      assert.ok(shot.bytes < 300_000)
    })
  })
})
