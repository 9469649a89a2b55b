/*
 * litchi-client outside a browser, against a real `litchi serve`: Node 20
 * has fetch but no WebSocket or EventSource, so the client signs in, creates
 * a job over REST and follows it by polling (the last transport of the
 * fallback) to the server's exact end; handed the `ws` package's WebSocket
 * (the `environment` option) it goes live over a WebSocket instead. A wrong
 * password is an ApiError with the server's code. The package is imported
 * from its built dist/, as any app would. No browser here; run.sh runs it
 * with the browser tests.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { WebSocket as NodeWebSocket } from 'ws'
import { ApiClient, LitchiServer, REPO, imageUrls, startOrigin, stopAll, uniqueTag, waitUntil } from './harness.mjs'

const { ApiError, LitchiClient } = await import(pathToFileURL(path.join(REPO, 'clients', 'js', 'dist', 'index.js')).href)

let origin
let server

describe('litchi-client in Node', { timeout: 180_000 }, () => {
  before(async () => {
    origin = await startOrigin()
    server = await new LitchiServer().start()
    server.addUser('node', 'node-password-1')
  })

  after(async () => {
    await stopAll()
  })

  /** Follows `jobId` with `client` until it shows the server's end state; returns what it saw. */
  async function followToEnd(client, jobId, token) {
    const seen = []
    const unsubscribe = client.subscribe(jobId, (current) => current && seen.push(current))
    try {
      const rest = new ApiClient(server.base)
      rest.token = token
      const finished = await rest.waitFinished(jobId)
      const last = await waitUntil(() => {
        const current = seen.at(-1)
        return current && current.state === finished.state && current.counts.done === finished.counts.done ? current : null
      }, { what: 'the client to see the job finished' })
      assert.deepEqual(last.counts, finished.counts)
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i].counts.done >= seen[i - 1].counts.done, 'done never goes down')
      return seen
    } finally {
      unsubscribe()
    }
  }

  test('signs in, creates a job and follows it by polling to the exact end', { timeout: 120_000 }, async () => {
    const anonymous = new LitchiClient({ baseUrl: server.base, storage: null })
    await assert.rejects(anonymous.login('node', 'wrong'), (error) => error instanceof ApiError && error.code === 'invalid_credentials')
    const { token, user } = await anonymous.login('node', 'node-password-1')
    assert.equal(user, 'node')
    assert.match(token, /^lt_/)

    // As on Node 20, whatever this Node has: no WebSocket, no EventSource.
    const client = new LitchiClient({
      baseUrl: server.base,
      token,
      storage: null,
      connection: { pollIntervalMs: 200 },
      environment: { WebSocket: null, EventSource: null },
    })
    try {
      const job = await client.createJob({ urls: imageUrls(origin, uniqueTag('node'), 8, 300), name: 'from node' })
      const seen = await followToEnd(client, job.id, token)
      assert.equal(seen[0].name, 'from node')
      assert.equal(client.live.transport, 'poll')
    } finally {
      client.close()
    }
  })

  test("with the ws package's WebSocket (environment option) it goes live over a WebSocket", { timeout: 120_000 }, async () => {
    const { token } = await new LitchiClient({ baseUrl: server.base, storage: null }).login('node', 'node-password-1')
    const client = new LitchiClient({ baseUrl: server.base, token, storage: null, environment: { WebSocket: NodeWebSocket } })
    try {
      const statuses = []
      client.onStatus((status) => statuses.push(`${status.state}/${status.transport}`))
      const job = await client.createJob({ urls: imageUrls(origin, uniqueTag('nodews'), 8, 300), name: 'over ws' })
      await followToEnd(client, job.id, token)
      assert.equal(client.live.transport, 'ws')
      assert.ok(statuses.includes('live/ws'), `went live on the WebSocket: ${statuses.join(' ')}`)
      assert.ok(client.live.lastSeq > 0, 'applied sequenced messages')
    } finally {
      client.close()
    }
  })
})
