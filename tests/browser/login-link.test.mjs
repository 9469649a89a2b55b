/*
 * The first start's one-time login link in a real browser (issue 11, item 4):
 *
 *   1. a tab already on /login that is then given /login#token=… (only the
 *      hash changes, no page load) signs in and lands on /jobs;
 *   2. the same link in another browser context afterwards is refused with a
 *      message, and stays on /login;
 *   3. the link was never a bearer token (a REST call with it is a 401).
 *
 * Run by run.sh, against a fresh `litchi serve` with no user (so it prints the link).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { LitchiServer, launchBrowser, newContext, screenshot, startOrigin, stopAll, watchPage } from './harness.mjs'

let browser

before(async () => {
  await startOrigin()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close().catch(() => {})
  await stopAll()
})

test('login link: one exchange, also in a tab already on /login; then dead', { timeout: 120_000 }, async () => {
  const server = await new LitchiServer().start()
  const link = server.linkToken
  assert.ok(link && link.startsWith('lt_'), 'the first start printed a login link')

  const first = await newContext(browser)
  const page = await first.newPage()
  const problems = watchPage(page, 'first')
  await page.goto(`${server.base}/login`)
  await page.locator('input[name="username"]').waitFor()
  // Only the hash changes: the Login view stays mounted.
  await page.goto(`${server.base}/login#token=${link}`)
  await page.waitForURL((url) => url.pathname === '/jobs', { timeout: 15_000 })
  assert.ok(!page.url().includes(link), 'the token left the address bar')
  const cookies = await first.cookies()
  const session = cookies.find((cookie) => cookie.name === 'litchi_session')
  assert.ok(session, 'a session cookie was set')
  assert.notEqual(session.value, link, 'the session is a new token, not the link')
  await screenshot(page, 'login-link-signed-in')

  const second = await newContext(browser)
  const other = await second.newPage()
  await other.goto(`${server.base}/login#token=${link}`)
  await other.getByRole('alert').waitFor()
  assert.match(await other.getByRole('alert').innerText(), /already used|expired/)
  assert.equal(new URL(other.url()).pathname, '/login')
  assert.ok(!other.url().includes(link))

  const bearer = await fetch(`${server.base}/api/jobs`, { headers: { Authorization: `Bearer ${link}` } })
  assert.equal(bearer.status, 401)
  assert.deepEqual(problems, [])
  await first.close()
  await second.close()
  await server.stop()
})
