/*
 * The web app's rough edges (issue 11) in a real browser: Debian's chromium
 * driven by playwright-core, a real `litchi serve` per test (fresh data folder
 * and user) and the test origin.
 *
 *   1   rate and ETA right after Resume follow the real rate (server estimator, running time only)
 *   2   Cancel asks first; a cancelled job shows its Cancelled count and never 100 %
 *   5   one source of truth: lists never run ahead of the counts, headings equal the stats
 *   6   New job: duplicates are reported and not sent
 *   7   Retry failed requeues transient failures only and says how many; retry by reason  [needs the retry API with reasons]
 *   8   a finished job: "done with N failed", duration, finish time, average rate (the job's `finished`)
 *   9   lightbox with previous / next, source URL, size, format; failed URLs copied and downloaded; search, filter, sort
 *   9z  zip with names from the URLs and the manifest                                    [needs archive.zip?names=url]
 *   10  Not Found page; progress in the title only on the job's page; stale numbers dimmed while the server is down
 *   11  Settings: who is signed in, API tokens created (shown once) and revoked, password changed  [needs /api/me, /api/tokens]
 *   12  skip link, visible focus on "Choose file…" and thumbnails, axe (WCAG A/AA) clean in light and dark
 *   L   Jobs list: pause / resume / cancel per job, bulk select
 *   L2  rename from the list and the job page                                    [needs PATCH /api/jobs/{id}]
 *   N   theme toggle beside the OS setting; opt-in notification when a job finishes
 *
 * Run by run.sh with the live-progress tests.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  ApiClient,
  LitchiServer,
  imageUrls,
  launchBrowser,
  newContext,
  readJobPage,
  runAxe,
  signIn,
  sleep,
  startOrigin,
  stopAll,
  uniqueTag,
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

const numberIn = (text) => {
  const match = /-?[\d,]*\.?\d+/.exec(text ?? '')
  return match ? Number(match[0].replace(/,/g, '')) : null
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent())?.trim() ?? ''
}

async function openJob(page, server, id) {
  await page.goto(`${server.base}/jobs/${encodeURIComponent(id)}`)
  await page.locator('main [role="progressbar"]').first().waitFor()
}

function waitJobState(api, id, states, what) {
  return waitUntil(
    async () => {
      const job = await api.getJob(id)
      return states.includes(job.state) ? job : null
    },
    { timeoutMs: 60_000, intervalMs: 100, what },
  )
}

/** Accepts (or dismisses) the next confirm() and returns its message. */
function nextDialog(page, accept) {
  return new Promise((resolve) => {
    page.once('dialog', async (dialog) => {
      const message = dialog.message()
      if (accept) await dialog.accept()
      else await dialog.dismiss()
      resolve(message)
    })
  })
}

/** Every file name in a zip (its central directory), read in Node. */
function zipNames(buffer) {
  const names = []
  let end = buffer.length - 22
  while (end >= 0 && buffer.readUInt32LE(end) !== 0x06054b50) end--
  assert.ok(end >= 0, 'the zip has an end-of-central-directory record')
  let offset = buffer.readUInt32LE(end + 16)
  const count = buffer.readUInt16LE(end + 10)
  for (let i = 0; i < count; i++) {
    assert.equal(buffer.readUInt32LE(offset), 0x02014b50, 'a central directory entry')
    const nameLength = buffer.readUInt16LE(offset + 28)
    const extraLength = buffer.readUInt16LE(offset + 30)
    const commentLength = buffer.readUInt16LE(offset + 32)
    names.push(buffer.toString('utf8', offset + 46, offset + 46 + nameLength))
    offset += 46 + nameLength + extraLength + commentLength
  }
  return names
}

before(async () => {
  origin = await startOrigin()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close().catch(() => {})
  await stopAll()
})

describe('issue 11: the web app', () => {
  test('1: right after Resume the rate and ETA follow the real rate', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'rate')
      await signIn(page, server.base, USER, PASSWORD)
      // Four transfers at once, 200 ms each: about 20 items a second.
      const job = await api.createJob(imageUrls(origin, uniqueTag('rate'), 600, 200), 'Resume me')
      await openJob(page, server, job.id)
      await waitUntil(async () => (await readJobPage(page)).done >= 40, { what: '40 items done' })
      await page.locator('[data-action="pause"]').click()
      await waitJobState(api, job.id, ['paused'], 'the job to pause')
      await waitUntil(async () => (await text(page, '[data-figure="eta"]')) === 'paused', { what: 'ETA to read "paused"' })
      assert.equal(await text(page, '[data-figure="rate"]'), '—', 'no rate while paused')
      // The scenario itself: a pause longer than the rate's 10 s window, so a
      // rate taken across it would read a fraction of the real one.
      await sleep(12_000)

      await page.locator('[data-action="resume"]').click()
      await waitJobState(api, job.id, ['running'], 'the job to run again')
      // What the job really does after Resume, measured from the REST counts.
      const samples = []
      const started = Date.now()
      while (Date.now() - started < 6_000) {
        const now = await api.getJob(job.id)
        samples.push({ t: Date.now(), finished: now.counts.done + now.counts.failed })
        await sleep(250)
      }
      const from = samples.find((s) => s.t - started >= 1_000)
      const to = samples.at(-1)
      const real = (to.finished - from.finished) / ((to.t - from.t) / 1000)
      const shown = numberIn(await text(page, '[data-figure="rate"]'))
      const eta = await text(page, '[data-figure="eta"]')
      assert.ok(real > 2, `the job ran after Resume (${real.toFixed(1)}/s)`)
      assert.ok(
        shown >= real / 2 && shown <= real * 2,
        `the page's rate ${shown}/s is near the real ${real.toFixed(1)}/s right after Resume`,
      )
      assert.match(eta, /^\d+ (s|min)/, `an ETA is shown (${eta})`)
      const etaSeconds = eta.includes('min') ? numberIn(eta) * 60 : numberIn(eta)
      const left = 600 - to.finished
      assert.ok(etaSeconds <= (left / real) * 2 + 60, `the ETA (${eta}) is near ${Math.round(left / real)} s, not hours`)
      assert.deepEqual(problems, [])
    })
  })

  test('2: Cancel asks first, and a cancelled job shows Cancelled and never 100 %', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'cancel')
      await signIn(page, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('cancel'), 200, 300), 'Cancel me')
      await openJob(page, server, job.id)
      await waitUntil(async () => (await readJobPage(page)).done >= 4, { what: 'a few items done' })

      const declined = nextDialog(page, false)
      await page.locator('[data-action="cancel"]').click()
      assert.match(await declined, /Cancel “Cancel me”\?/)
      assert.notEqual((await api.getJob(job.id)).state, 'cancelled', 'dismissing the question keeps the job')

      const accepted = nextDialog(page, true)
      await page.locator('[data-action="cancel"]').click()
      await accepted
      const cancelled = await waitJobState(api, job.id, ['cancelled'], 'the job to be cancelled')
      const shown = await waitUntil(
        async () => {
          const now = await readJobPage(page)
          const count = numberIn(await page.evaluate(() => document.querySelector('[data-count="cancelled"]')?.textContent ?? ''))
          return now.state === 'cancelled' && count === cancelled.counts.cancelled ? { ...now, cancelled: count } : null
        },
        { what: 'the page to show the job cancelled with its Cancelled count' },
      )
      const { counts } = cancelled
      assert.ok(counts.cancelled > 0, 'some items were cancelled')
      assert.equal(shown.done, counts.done)
      assert.equal(shown.failed, counts.failed)
      assert.equal(shown.left, 0)
      assert.equal(shown.done + shown.failed + shown.cancelled + shown.left, shown.total, 'the counts add up to the total')
      const processed = Math.floor(((counts.done + counts.failed) * 100) / counts.total)
      assert.equal(shown.value, processed, 'the bar shows what was processed')
      assert.ok(shown.value < 100, 'never 100 %')
      assert.match(shown.text, /\(\d[\d,]* cancelled\)$/)
      assert.equal(await text(page, '[data-percent]'), `${processed}%`)
      assert.match(await page.title(), new RegExp(`^\\(${processed}%\\) Cancel me · Litchi$`))
      // The Jobs list says the same.
      await page.locator('nav a[href="/jobs"]').click()
      const card = page.locator(`[data-job-id="${job.id}"]`)
      assert.equal(numberIn(await card.locator('[data-count="cancelled"]').textContent()), counts.cancelled)
      assert.equal(Number(await card.locator('[role="progressbar"]').getAttribute('aria-valuenow')), processed)
      assert.deepEqual(problems, [])
    })
  })

  test('5: the lists never run ahead of the counts; headings equal the stats', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'counts')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('counts')
      const urls = imageUrls(origin, tag, 60, 300)
      for (let i = 0; i < 12; i++) urls.splice(i * 5, 0, `${origin.base}/status/404?n=${tag}-${i}&delay=300`)
      const job = await api.createJob(urls, 'Counted')
      await openJob(page, server, job.id)
      let samples = 0
      for (;;) {
        const seen = await page.evaluate(() => {
          const num = (selector) => {
            const node = document.querySelector(selector)
            return node ? Number(node.textContent.replace(/[^0-9]/g, '')) : null
          }
          const groups = [...document.querySelectorAll('[data-reason] .failures__count')].reduce(
            (sum, node) => sum + Number(node.textContent.replace(/[^0-9]/g, '')),
            0,
          )
          return {
            state: document.querySelector('[data-job-state]')?.textContent,
            done: num('[data-count="done"]'),
            failed: num('[data-count="failed"]'),
            doneHeading: num('[data-heading-count="done"]'),
            failedHeading: num('[data-heading-count="failed"]'),
            grid: Number(document.querySelector('.thumbs')?.getAttribute('data-items') ?? 0),
            groups,
          }
        })
        samples++
        if (seen.doneHeading !== null) assert.equal(seen.doneHeading, seen.done, 'Images (N) is the Done count')
        if (seen.failedHeading !== null) assert.equal(seen.failedHeading, seen.failed, 'Failed (N) is the Failed count')
        assert.ok(seen.grid <= seen.done, `the grid (${seen.grid}) never runs ahead of Done (${seen.done})`)
        assert.ok(seen.groups <= seen.failed, `the groups (${seen.groups}) never hold more than Failed (${seen.failed})`)
        if (seen.state === 'done' && seen.grid === 60 && seen.groups === 12) break
        if (samples > 3000) assert.fail(`the page did not settle: ${JSON.stringify(seen)}`)
        await sleep(30)
      }
      const finished = await api.getJob(job.id)
      assert.deepEqual([finished.counts.done, finished.counts.failed], [60, 12])
      assert.ok(samples > 10, 'sampled while the job ran')
      assert.deepEqual(problems, [])
    })
  })

  test('6: New job reports duplicates and does not send them', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      await signIn(page, server.base, USER, PASSWORD, '/jobs/new')
      const urls = imageUrls(origin, uniqueTag('dup'), 3, 0)
      await page.locator('textarea[name="urls"]').fill([urls[0], urls[1], urls[0], '', '# a comment', urls[2], urls[1]].join('\n'))
      await waitUntil(async () => (await text(page, '[data-valid-count]')) === '3', { what: 'three valid URLs counted' })
      assert.match(await text(page, '[data-duplicates]'), /2 duplicates left out/)
      assert.match(await text(page, 'form button[type="submit"]'), /Start downloading 3$/)
      await page.locator('form button[type="submit"]').click()
      await page.waitForURL((url) => /^\/jobs\/\d+$/.test(url.pathname))
      const id = new URL(page.url()).pathname.split('/').pop()
      assert.equal((await api.getJob(id)).counts.total, 3, 'the job holds each URL once')
    })
  })

  test('7: Retry failed requeues transient failures and says how many; a reason retries on request', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'retry')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('retry')
      const flaky = [0, 1].map((i) => `${tag}-flaky-${i}`)
      const urls = [
        ...imageUrls(origin, tag, 4, 0),
        ...flaky.map((key, i) => `${origin.base}/flaky/${key}/1/${tag}-f${i}.png`),
        `${origin.base}/status/404?key=${tag}-404`,
        `${origin.base}/html-as-png.png?key=${tag}-html`,
      ]
      const job = await api.createJob(urls, 'Retry me')
      await api.waitFinished(job.id)
      await openJob(page, server, job.id)
      await page.locator('[data-reason="not_image"]').waitFor()

      await page.locator('[data-action="retry-failed"]').click()
      await waitUntil(async () => /Requeued 2 items/.test(await text(page, '[data-notice]')), {
        what: '"Requeued 2 items" after Retry failed',
      })
      await waitUntil(
        async () => {
          const now = await api.getJob(job.id)
          return now.state === 'done' && now.counts.done === 6 ? now : null
        },
        { what: 'the two 503s to pass on retry' },
      )
      const hits = async (key) => (await (await fetch(`${origin.base}/hits/${key}`)).json()).count
      assert.equal(await hits(`${tag}-404`), 1, 'a 404 is not retried by default')
      assert.equal(await hits(`${tag}-html`), 1, 'not_image is not retried by default')

      await page.locator('[data-reason="not_image"] [data-action="retry-reason"]').click()
      await waitUntil(async () => /Requeued 1 item\b/.test(await text(page, '[data-notice]')), { what: '"Requeued 1 item"' })
      await waitUntil(async () => (await hits(`${tag}-html`)) === 2, { what: 'the not_image item to be fetched again' })
      const final = await api.waitFinished(job.id)
      assert.deepEqual([final.counts.done, final.counts.failed], [6, 2])
      assert.equal(await hits(`${tag}-404`), 1)
      assert.deepEqual(problems, [])
    })
  })

  test('8: a finished job shows "done with N failed", its duration, finish time and average rate', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'finished')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('fin')
      const job = await api.createJob([...imageUrls(origin, tag, 8, 300), `${origin.base}/status/404?n=${tag}`, `${origin.base}/status/410?n=${tag}`], 'Finished')
      await openJob(page, server, job.id)
      const finished = await api.waitFinished(job.id)
      await page.locator('[data-finished-at]').waitFor()
      assert.equal(await text(page, '[data-job-outcome]'), 'done with 2 failed')
      const badge = await page.locator('[data-job-outcome]').evaluate((node) => node.className)
      assert.match(badge, /badge--done-with-failures/, 'not the plain green Done')
      const duration = await text(page, '[data-figure="duration"]')
      const seconds = (Date.parse(finished.finished) - Date.parse(finished.created)) / 1000
      assert.equal(duration, seconds < 60 ? `${Math.round(seconds)} s` : duration, 'the duration is finished − created')
      assert.ok(seconds > 0.3, `the job took its time (${seconds} s)`)
      const average = numberIn(await text(page, '[data-figure="average-rate"]'))
      assert.ok(Math.abs(average - 10 / seconds) <= 0.1 + 0.05 * (10 / seconds), `average ${average}/s = 10 items / ${seconds} s`)
      assert.equal(await page.locator('[data-figure="eta"]').count(), 0, 'no ETA once finished')
      assert.equal(await page.locator('[data-figure="rate"]').count(), 0, 'no live rate once finished')
      assert.match(await page.title(), /^\(100%\) Finished · Litchi$/)
      assert.deepEqual(problems, [])
    })
  })

  test('9: the lightbox, the failed URLs and item search', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base })
      const page = await context.newPage()
      const problems = watchPage(page, 'finished')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('fin')
      // Input (and arrival) order differs from URL order: e, a, d, b, c.
      const labels = ['e', 'a', 'd', 'b', 'c']
      const images = labels.map((label, i) => `${origin.base}/img/${tag}-${label}.png?delay=${100 + i * 150}`)
      const failed = [`${origin.base}/status/404?n=${tag}`, `${origin.base}/html-as-png.png?n=${tag}`]
      const job = await api.createJob([...images, ...failed], 'Finished')
      await api.waitFinished(job.id)
      await openJob(page, server, job.id)

      // The lightbox.
      const tiles = page.locator('.thumbs__tile')
      await waitUntil(async () => (await tiles.count()) === 5, {
        what: 'five thumbnails',
        timeoutMs: 30_000,
      }).catch(async (error) => {
        throw new Error(`${error.message}; the page: ${(await page.locator('main').innerText()).slice(0, 1500)}`)
      })
      const firstCaption = await tiles.first().getAttribute('title')
      await tiles.first().click()
      const box = page.locator('[data-lightbox]')
      await box.waitFor()
      assert.equal(await box.getAttribute('role'), 'dialog')
      const firstUrl = await text(page, '[data-lightbox-url]')
      assert.ok(images.includes(firstUrl), `the source URL (${firstUrl}) is one of the job's`)
      assert.ok(firstCaption.startsWith(firstUrl.split('/').pop().split('?')[0]), 'the tile clicked is the one shown')
      const width = 64
      assert.match(await text(page, '[data-lightbox-size]'), /^64 × 48 · [\d.]+ \w+$/)
      assert.equal(await text(page, '[data-lightbox-format]'), 'png')
      const loadedWidth = await waitUntil(
        () => page.locator('[data-lightbox-image]').evaluate((img) => (img.complete ? img.naturalWidth : 0)),
        { what: 'the full image to load' },
      )
      assert.equal(loadedWidth, width, 'the full-size image, not the thumbnail')
      assert.ok(await page.locator('[data-lightbox-previous]').isDisabled(), 'no previous before the first')
      await page.keyboard.press('ArrowRight')
      await waitUntil(async () => (await text(page, '#lightbox-title')) === 'Image 2 of 5', { what: '→ moves to image 2' })
      assert.notEqual(await text(page, '[data-lightbox-url]'), firstUrl)
      await page.locator('[data-lightbox-previous]').click()
      await waitUntil(async () => (await text(page, '[data-lightbox-url]')) === firstUrl, { what: '‹ goes back' })
      await page.keyboard.press('Escape')
      await box.waitFor({ state: 'detached' })
      assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('thumbs__tile')), 'focus returns to the thumbnail')

      // Failed URLs: copied and downloaded, exactly the failed ones.
      await page.locator('[data-action="copy-failed"]').click()
      await waitUntil(async () => /Copied 2 failed URLs/.test(await text(page, '[data-notice]')), { what: 'copied' })
      const copied = await page.evaluate(() => navigator.clipboard.readText())
      assert.deepEqual(copied.trim().split('\n').sort(), [...failed].sort())
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-action="download-failed"]').click()])
      assert.equal(download.suggestedFilename(), `job-${job.id}-failed.txt`)
      const chunks = []
      for await (const chunk of await download.createReadStream()) chunks.push(chunk)
      assert.deepEqual(Buffer.concat(chunks).toString('utf8').trim().split('\n').sort(), [...failed].sort())

      // Search, filter, sort.
      await page.locator('input[name="item-search"]').fill(`${tag}-d`)
      await waitUntil(async () => (await page.locator('.thumbs').getAttribute('data-items')) === '1', { what: 'one image matches' })
      assert.match(await text(page, '[data-matches="done"]'), /1 match/)
      assert.match(await text(page, '[data-matches="failed"]'), /0 match/)
      await page.locator('input[name="item-search"]').fill('')
      await page.locator('select[name="item-state"]').selectOption('failed')
      await waitUntil(async () => (await page.locator('#images-title').count()) === 0, { what: 'images hidden when showing failed' })
      await page.locator('select[name="item-reason"]').selectOption('not_image')
      await waitUntil(async () => (await page.locator('[data-reason]').count()) === 1, { what: 'one reason group' })
      assert.equal(await page.locator('[data-reason]').getAttribute('data-reason'), 'not_image')
      await page.locator('select[name="item-state"]').selectOption('all')
      await page.locator('select[name="item-reason"]').selectOption('')
      const order = async () => (await tiles.evaluateAll((nodes) => nodes.map((node) => node.title.split('.png')[0].split('-').pop()))).join('')
      const arrival = await order()
      assert.equal([...arrival].sort().join(''), 'abcde')
      await page.locator('select[name="item-sort"]').selectOption('url')
      await waitUntil(async () => (await order()) === 'abcde', { what: 'the images sorted by URL' })
      await page.locator('select[name="item-sort"]').selectOption('arrival')
      await waitUntil(async () => (await order()) === arrival, { what: 'the images back in arrival order' })
      assert.deepEqual(problems, [])
    })
  })

  test('9z: the zip can name files from their URLs and holds the manifest', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('zip')
      const job = await api.createJob([...imageUrls(origin, tag, 3, 0), `${origin.base}/img/${tag}-0.png?w=80`], 'Zipped')
      await api.waitFinished(job.id)
      await openJob(page, server, job.id)
      await page.locator('select[name="zip-names"]').selectOption('url')
      const href = await page.locator('[data-download="zip"]').getAttribute('href')
      assert.match(href, /archive\.zip\?names=url$/)
      const bytes = await page.evaluate(async (path) => {
        const response = await fetch(path)
        return response.ok ? [...new Uint8Array(await response.arrayBuffer())] : response.status
      }, href)
      assert.ok(Array.isArray(bytes), `the zip downloads (HTTP ${bytes})`)
      const names = zipNames(Buffer.from(bytes))
      assert.ok(names.includes('manifest.jsonl'), `manifest.jsonl in ${names}`)
      const images = names.filter((name) => name !== 'manifest.jsonl')
      assert.equal(images.length, 4)
      assert.equal(new Set(images).size, 4, 'names are deduplicated')
      for (let i = 0; i < 3; i++) assert.ok(images.some((name) => name.includes(`${tag}-${i}`)), `${tag}-${i} named from its URL: ${images}`)
    })
  })

  test('10: Not Found page, the title names the job, stale numbers dim while the server is down', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'notfound')
      await signIn(page, server.base, USER, PASSWORD)
      await page.goto(`${server.base}/no/such/page`)
      await page.locator('[data-not-found]').waitFor()
      assert.equal(new URL(page.url()).pathname, '/no/such/page', 'the address stays')
      assert.match(await text(page, 'main h1'), /Page not found/)
      assert.equal(await page.title(), 'Not found · Litchi')
      await page.goto(`${server.base}/jobs/999999`)
      await page.locator('[data-not-found]').waitFor()
      assert.match(await text(page, 'main h1'), /Job not found/)

      const job = await api.createJob(imageUrls(origin, uniqueTag('title'), 300, 400), 'Titled')
      await openJob(page, server, job.id)
      await waitUntil(async () => /^\(\d+%\) Titled · Litchi$/.test(await page.title()), { what: 'the job page title' })
      await page.locator('nav a[href="/settings"]').click()
      await waitUntil(async () => (await page.title()) === 'Settings · Litchi', { what: 'no percent on Settings' })
      await page.locator('nav a[href="/jobs"]').click()
      await waitUntil(async () => (await page.title()) === 'Jobs · Litchi', { what: 'no percent on Jobs' })

      const opacity = () => page.locator('[data-count="done"]').first().evaluate((node) => Number(getComputedStyle(node).opacity))
      await waitUntil(async () => (await opacity()) === 1, { what: 'bright numbers while live' })
      assert.equal(await page.locator('main[data-stale]').count(), 0)
      await server.kill()
      await page.locator('main[data-stale]').waitFor()
      await waitUntil(async () => (await opacity()) < 0.6, { what: 'the numbers to dim' })
      await server.start()
      await page.locator('main[data-stale]').waitFor({ state: 'detached', timeout: 60_000 })
      await waitUntil(async () => (await opacity()) === 1, { what: 'the numbers to brighten again' })
      assert.deepEqual(problems, [])
    })
  })

  test('11: Settings shows who is signed in, makes and revokes API tokens, changes the password', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'settings')
      await signIn(page, server.base, USER, PASSWORD, '/settings')
      await waitUntil(async () => /Signed in as alice/.test(await text(page, '[data-signed-in-as]')), { what: 'who is signed in' })

      await page.locator('input[name="token-name"]').fill('backup script')
      await page.locator('[data-action="create-token"]').click()
      const token = await page.locator('[data-new-token]').inputValue()
      assert.ok(token.length >= 20, 'a token is shown once')
      const asToken = (path) => fetch(`${server.base}${path}`, { headers: { Authorization: `Bearer ${token}` } })
      assert.equal((await asToken('/api/jobs')).status, 200, 'the new token works')
      const row = page.locator('[data-token-id]', { hasText: 'backup script' })
      await row.waitFor()
      assert.ok(!(await page.locator('[data-tokens]').textContent()).includes(token), 'the list never shows a whole token')

      const confirmed = nextDialog(page, true)
      await row.locator('[data-action="revoke-token"]').click()
      await confirmed
      await row.waitFor({ state: 'detached' })
      assert.equal((await asToken('/api/jobs')).status, 401, 'a revoked token is refused')

      await page.locator('input[name="current-password"]').fill('not it')
      await page.locator('input[name="new-password"]').fill('a new long passphrase')
      await page.locator('input[name="repeat-password"]').fill('a new long passphrase')
      await page.locator('form[data-form="password"] button[type="submit"]').click()
      await waitUntil(async () => /current password is wrong/.test(await text(page, '[data-form="password"] [role="alert"]')), {
        what: 'the wrong current password refused',
      })
      await page.locator('input[name="current-password"]').fill(PASSWORD)
      await page.locator('form[data-form="password"] button[type="submit"]').click()
      await page.locator('[data-password-notice]').waitFor()
      await assert.rejects(new ApiClient(server.base).login(USER, PASSWORD), /401/, 'the old password is refused')
      await new ApiClient(server.base).login(USER, 'a new long passphrase')
      assert.deepEqual(problems, [])
    })
  })

  test('12: skip link, visible focus, and axe finds nothing in light or dark', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'a11y')
      const tag = uniqueTag('axe')
      const done = await api.createJob(imageUrls(origin, tag, 4, 0), 'All good')
      const failing = await api.createJob([...imageUrls(origin, `${tag}f`, 2, 0), `${origin.base}/status/404?n=${tag}`], 'Some failed')
      const cancelled = await api.createJob(imageUrls(origin, `${tag}c`, 100, 500), 'Stopped')
      const paused = await api.createJob(imageUrls(origin, `${tag}p`, 100, 500), 'Waiting')
      await api.call('POST', `/api/jobs/${cancelled.id}/cancel`)
      await api.call('POST', `/api/jobs/${paused.id}/pause`)
      await api.waitFinished(done.id)
      await api.waitFinished(failing.id)
      await signIn(page, server.base, USER, PASSWORD)

      // The skip link is the first stop and moves focus to the page.
      await page.goto(`${server.base}/jobs`)
      await page.locator(`[data-job-id="${done.id}"]`).waitFor()
      await page.keyboard.press('Tab')
      assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Skip to content')
      const linkBox = await page.locator('.skip-link').boundingBox()
      assert.ok(linkBox && linkBox.y >= 0, 'the focused skip link is on screen')
      await page.keyboard.press('Enter')
      await waitUntil(() => page.evaluate(() => document.activeElement?.id === 'main'), { what: 'focus on the main content' })

      // "Choose file…" shows focus.
      await page.goto(`${server.base}/jobs/new`)
      await page.locator('textarea[name="urls"]').focus()
      await page.keyboard.press('Tab')
      assert.equal(await page.evaluate(() => document.activeElement?.type), 'file')
      const ring = await page.locator('.file-button').evaluate((node) => getComputedStyle(node).outlineStyle + ' ' + getComputedStyle(node).outlineWidth)
      assert.match(ring, /^solid [2-9]/, `the Choose file button shows focus (${ring})`)

      // A thumbnail shows focus, and the ring is not clipped away.
      await openJob(page, server, done.id)
      const tile = page.locator('.thumbs__tile').first()
      await tile.waitFor()
      await tile.focus()
      await page.keyboard.press('Shift+Tab')
      await page.keyboard.press('Tab')
      const tileRing = await tile.evaluate((node) => [getComputedStyle(node).outlineStyle, parseFloat(getComputedStyle(node).outlineWidth), parseFloat(getComputedStyle(node).outlineOffset)])
      assert.equal(tileRing[0], 'solid')
      assert.ok(tileRing[1] >= 2 && tileRing[2] + tileRing[1] <= 0, `the ring is drawn inside the tile (${tileRing})`)

      const pages = ['/jobs', `/jobs/${done.id}`, `/jobs/${failing.id}`, `/jobs/${cancelled.id}`, `/jobs/${paused.id}`, '/jobs/new', '/settings', '/nothing-here']
      for (const scheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme: scheme })
        for (const path of pages) {
          await page.goto(`${server.base}${path}`)
          await page.locator('main h1').first().waitFor()
          await page.waitForLoadState('networkidle').catch(() => {})
          const violations = await runAxe(page)
          assert.deepEqual(violations, [], `${scheme} ${path}: ${JSON.stringify(violations, null, 1)}`)
        }
      }
      assert.deepEqual(problems, [])
    })
  })

  test('L: the Jobs list pauses, resumes and cancels jobs, one or several', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'list')
      await signIn(page, server.base, USER, PASSWORD)
      const tag = uniqueTag('list')
      const jobs = []
      for (const name of ['First', 'Second', 'Third']) jobs.push(await api.createJob(imageUrls(origin, `${tag}${name}`, 200, 500), name))
      const card = (job) => page.locator(`[data-job-id="${job.id}"]`)
      await card(jobs[2]).waitFor()

      await card(jobs[0]).locator('[data-action="pause"]').click()
      await waitJobState(api, jobs[0].id, ['paused'], 'the first job to pause from the list')
      await card(jobs[0]).locator('[data-action="resume"]').waitFor()
      await card(jobs[0]).locator('[data-action="resume"]').click()
      await waitJobState(api, jobs[0].id, ['running', 'queued'], 'the first job to resume from the list')

      // Bulk: select two, pause them, then cancel them (after a question).
      await card(jobs[0]).locator('[data-select]').check()
      await card(jobs[2]).locator('[data-select]').check()
      assert.match(await text(page, '[data-bulk] label'), /2 selected/)
      await page.locator('[data-bulk-action="pause"]').click()
      await waitJobState(api, jobs[0].id, ['paused'], 'bulk pause of the first')
      await waitJobState(api, jobs[2].id, ['paused'], 'bulk pause of the third')
      assert.notEqual((await api.getJob(jobs[1].id)).state, 'paused', 'the unselected job runs on')
      assert.match(await text(page, '[data-notice]'), /Paused 2 jobs/)
      const question = nextDialog(page, true)
      await page.locator('[data-bulk-action="cancel"]').click()
      assert.match(await question, /Cancel 2 jobs\?/)
      await waitJobState(api, jobs[0].id, ['cancelled'], 'bulk cancel of the first')
      await waitJobState(api, jobs[2].id, ['cancelled'], 'bulk cancel of the third')
      assert.notEqual((await api.getJob(jobs[1].id)).state, 'cancelled')
      await api.call('POST', `/api/jobs/${jobs[1].id}/cancel`)
      assert.deepEqual(problems, [])
    })
  })

  test('L2: a job is renamed from the Jobs list and from its page', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      const page = await context.newPage()
      const problems = watchPage(page, 'rename')
      await signIn(page, server.base, USER, PASSWORD)
      const job = await api.createJob(imageUrls(origin, uniqueTag('rename'), 2, 0), 'Old name')
      const card = page.locator(`[data-job-id="${job.id}"]`)
      await card.waitFor()
      await card.locator('[data-action="rename"]').click()
      await card.locator('input[name="job-name"]').fill('Second, renamed')
      await card.locator('input[name="job-name"]').press('Enter')
      await waitUntil(async () => (await api.getJob(job.id)).name === 'Second, renamed', { what: 'the rename to reach the server' })
      await waitUntil(async () => (await card.locator('.job-card__name').textContent()) === 'Second, renamed', {
        what: 'the card to show the new name',
      })
      await card.locator('.job-card__name').click()
      await page.locator('main [data-action="rename"]').click()
      await page.locator('input[name="job-name"]').fill('Third name')
      await page.locator('input[name="job-name"]').press('Enter')
      await waitUntil(async () => (await api.getJob(job.id)).name === 'Third name', { what: 'the rename from the job page' })
      await waitUntil(async () => /^\(\d+%\) Third name · Litchi$/.test(await page.title()), { what: 'the title to follow' })
      assert.deepEqual(problems, [])
    })
  })

  test('N: a theme toggle beside the OS setting, and a notification when a job finishes', { timeout: TEST_TIMEOUT_MS }, async () => {
    await withSession(async ({ api, context, server }) => {
      await context.grantPermissions(['notifications'], { origin: server.base })
      const page = await context.newPage()
      const problems = watchPage(page, 'prefs')
      // Record the notifications the page makes (the real Notification still runs).
      await page.addInitScript(() => {
        const Real = window.Notification
        window.__notifications = []
        window.Notification = class extends Real {
          constructor(title, options) {
            super(title, options)
            window.__notifications.push({ title, body: options?.body })
          }
        }
      })
      await page.emulateMedia({ colorScheme: 'light' })
      await signIn(page, server.base, USER, PASSWORD, '/settings')
      const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)
      const light = await background()
      await page.locator('select[name="theme"]').selectOption('dark')
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark')
      const dark = await background()
      assert.notEqual(dark, light, 'the page turned dark on a light OS')
      await page.reload()
      await page.locator('select[name="theme"]').waitFor()
      assert.equal(await background(), dark, 'the choice stays after a reload')
      assert.equal(await page.locator('select[name="theme"]').inputValue(), 'dark')
      await page.locator('select[name="theme"]').selectOption('system')
      await waitUntil(async () => (await background()) === light, { what: 'back to the OS setting' })

      await page.locator('input[name="notify"]').check()
      await waitUntil(() => page.evaluate(() => localStorage.getItem('litchi.notify') === '1'), { what: 'notifications on' })
      const job = await api.createJob(imageUrls(origin, uniqueTag('notify'), 6, 300), 'Ping me')
      await waitUntil(() => page.evaluate(() => window.__notifications.length > 0), { what: 'a notification' })
      await api.waitFinished(job.id)
      const made = await page.evaluate(() => window.__notifications)
      assert.deepEqual(made, [{ title: 'Ping me is done', body: '6 downloaded.' }])
      assert.deepEqual(problems, [])
    })
  })
})
