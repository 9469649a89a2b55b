/*
 * The package's own surface, as another app uses it: LitchiApi's requests
 * (base URL, bearer token, error codes, the 401 hook), the transports' URLs
 * on another server, and the job streams of LiveJobs / LitchiClient:
 * subscribe(jobId) hears that job only, once per change, null when it is
 * gone or never was, and a job a cut snapshot left out is read over HTTP.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, LitchiApi } from '../src/api.js'
import { LitchiClient } from '../src/client.js'
import { LiveJobs } from '../src/live/live-jobs.js'
import { webSocketUrl } from '../src/live/transports.js'
import type { Job } from '../src/protocol.js'
import { FakeEventSource, FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from '../src/testing.js'

interface Call {
  url: string
  method: string
  headers: Record<string, string>
  body: unknown
}

/** A fetch answering from `routes` ("METHOD /path" → [status, body]) and recording each call. */
function fakeFetch(routes: Record<string, [number, unknown]>) {
  const calls: Call[] = []
  const fetchFn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input)
    const method = init?.method ?? 'GET'
    calls.push({
      url,
      method,
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: typeof init?.body === 'string' && init.body.startsWith('{') ? JSON.parse(init.body) : init?.body,
    })
    const path = url.replace(/^https?:\/\/[^/]+/, '').replace(/\?.*$/, '')
    const answer = routes[`${method} ${path}`]
    if (!answer) return new Response(JSON.stringify({ error: { code: 'not_found', message: 'no such thing' } }), { status: 404 })
    const [status, body] = answer
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
  })
  return { calls, fetch: fetchFn as unknown as typeof fetch }
}

beforeEach(() => {
  resetFakes()
})

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('LitchiApi', () => {
  it('sends the bearer token to the base URL and parses what comes back', async () => {
    const { calls, fetch } = fakeFetch({
      'GET /api/jobs': [200, { jobs: [makeJob('7', 3), { name: 'no id' }] }],
      'POST /api/jobs': [201, makeJob('8', 0, 2)],
    })
    let token = 'lt_first'
    const api = new LitchiApi({ baseUrl: 'https://litchi.example:9527/', token: () => token, fetch })
    const jobs = await api.listJobs()
    expect(jobs.map((j) => j.id)).toEqual(['7'])
    expect(calls[0].url).toBe('https://litchi.example:9527/api/jobs')
    expect(calls[0].headers.Authorization).toBe('Bearer lt_first')
    token = 'lt_second'
    const created = await api.createJob({ urls: ['http://127.0.0.1/a.png'], name: '', user_agent: 'bot/1' })
    expect(created.id).toBe('8')
    expect(calls[1].headers.Authorization).toBe('Bearer lt_second')
    expect(calls[1].body).toEqual({ urls: ['http://127.0.0.1/a.png'], user_agent: 'bot/1' })
    expect(api.imageUrl('a'.repeat(64), 200)).toBe(`https://litchi.example:9527/api/images/${'a'.repeat(64)}?thumb=200`)
  })

  it('turns error answers into ApiError with the server code, and tells of a 401 once', async () => {
    const { fetch } = fakeFetch({
      'GET /api/jobs/1': [400, { error: { code: 'bad_id', message: 'not an id' } }],
      'GET /api/jobs/2': [401, { error: { code: 'unauthorized', message: 'sign in' } }],
      'POST /api/login': [401, { error: { code: 'invalid_credentials', message: 'wrong' } }],
      'GET /api/jobs': [401, { error: { code: 'unauthorized', message: 'sign in' } }],
    })
    const onUnauthorized = vi.fn()
    const api = new LitchiApi({ fetch, onUnauthorized })
    await expect(api.getJob('1')).rejects.toMatchObject({ name: 'ApiError', status: 400, code: 'bad_id', message: 'not an id' })
    await expect(api.getJob('2')).rejects.toBeInstanceOf(ApiError)
    expect(onUnauthorized).toHaveBeenCalledOnce()
    // A wrong password is the login form's to report, not a signed-out session.
    await expect(api.login('alice', 'nope')).rejects.toMatchObject({ code: 'invalid_credentials' })
    expect(onUnauthorized).toHaveBeenCalledOnce()
    expect(await api.checkAuth()).toBe('unauthorized')
  })

  it('reports an unreachable server as ApiError network, and login answers the token', async () => {
    const down = new LitchiApi({ fetch: (async () => Promise.reject(new TypeError('fetch failed'))) as unknown as typeof fetch })
    await expect(down.listJobs()).rejects.toMatchObject({ status: 0, code: 'network' })
    expect(await down.checkAuth()).toBe('unreachable')
    const { fetch } = fakeFetch({ 'POST /api/login': [200, { token: 'lt_abc', user: 'alice' }] })
    expect(await new LitchiApi({ fetch }).login('alice', 'pw')).toEqual({ token: 'lt_abc', user: 'alice' })
  })
})

describe('transports on another server', () => {
  it('derives the WebSocket URL from the base URL', () => {
    const page = { protocol: 'https:', host: 'app.example' }
    expect(webSocketUrl(page)).toBe('wss://app.example/api/ws')
    expect(webSocketUrl(page, 'http://127.0.0.1:9527')).toBe('ws://127.0.0.1:9527/api/ws')
    expect(webSocketUrl(page, 'https://litchi.example/sub')).toBe('wss://litchi.example/sub/api/ws')
    expect(webSocketUrl(page, '/litchi')).toBe('wss://app.example/litchi/api/ws')
  })

  it('opens the socket and the event stream on the base URL', async () => {
    vi.useFakeTimers()
    const live = new LiveJobs({ storage: null })
    live.start({ environment: makeEnvironment({ baseUrl: 'http://127.0.0.1:9600' }), clock: new ManualFrameClock() })
    expect(FakeWebSocket.latest().url).toBe('ws://127.0.0.1:9600/api/ws')
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1_000)
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    expect(FakeEventSource.latest().url).toBe('http://127.0.0.1:9600/api/events')
    live.stop()
  })
})

describe('job streams', () => {
  function started(api?: LitchiApi) {
    const clock = new ManualFrameClock()
    const live = new LiveJobs({ api, storage: null })
    live.start({ environment: makeEnvironment(), clock })
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    return { live, socket, clock }
  }

  it('subscribe(jobId) hears that job once per applied change, then null when it is deleted', () => {
    const { live, socket, clock } = started()
    const heard: (number | null)[] = []
    live.subscribe('1', (job) => heard.push(job ? job.counts.done : null))
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 0), makeJob('2', 0)] })
    clock.runFrame()
    socket.serverSend({ type: 'progress', seq: 2, job: makeJob('1', 5) })
    socket.serverSend({ type: 'progress', seq: 3, job: makeJob('1', 6) })
    clock.runFrame()
    socket.serverSend({ type: 'progress', seq: 4, job: makeJob('2', 9) })
    clock.runFrame()
    socket.serverSend({ type: 'job', seq: 5, event: 'deleted', job: makeJob('1', 6) })
    clock.runFrame()
    expect(heard).toEqual([0, 6, null])
    live.stop()
  })

  it('tells a late subscriber the job at once, and stops after unsubscribe', () => {
    const { live, socket, clock } = started()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 4)] })
    clock.runFrame()
    const heard: number[] = []
    const unsubscribe = live.subscribe('1', (job) => job && heard.push(job.counts.done))
    expect(heard).toEqual([4])
    unsubscribe()
    socket.serverSend({ type: 'progress', seq: 2, job: makeJob('1', 5) })
    clock.runFrame()
    expect(heard).toEqual([4])
    live.stop()
  })

  it('reads a job the full state lacks over HTTP: found (cut snapshot) or null (no such job)', async () => {
    const { fetch, calls } = fakeFetch({ 'GET /api/jobs/old': [200, makeJob('old', 10, 10, { state: 'done' })] })
    const { live, socket, clock } = started(new LitchiApi({ fetch }))
    const old: (Job | null)[] = []
    const missing: (Job | null)[] = []
    live.subscribe('old', (job) => old.push(job))
    live.subscribe('nope', (job) => missing.push(job))
    expect(calls).toHaveLength(0) // nothing is known yet: wait for the server's list
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, truncated: true, jobs: [makeJob('1', 0)] })
    clock.runFrame()
    await vi.waitFor(() => expect(missing).toEqual([null]))
    await vi.waitFor(() => expect(old.map((j) => j?.state)).toEqual(['done']))
    expect(calls.map((c) => c.url).sort()).toEqual(['/api/jobs/nope', '/api/jobs/old'])
    expect(live.job('old')?.counts.done).toBe(10)
    live.stop()
  })

  it('subscribeJobs hears the list newest first on every change', () => {
    const { live, socket, clock } = started()
    const lists: string[][] = []
    live.subscribeJobs((jobs) => lists.push(jobs.map((j) => j.id)))
    socket.serverSend({
      type: 'hello',
      protocol: 1,
      seq: 1,
      jobs: [makeJob('1', 0, 10, { created: '2026-01-01T00:00:00Z' }), makeJob('2', 0, 10, { created: '2026-02-01T00:00:00Z' })],
    })
    clock.runFrame()
    expect(lists).toEqual([[], ['2', '1']])
    live.stop()
  })
})

describe('LitchiClient', () => {
  it('connects on the first subscribe, once, with the token as subprotocol, and shows created jobs at once', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket)
    vi.stubGlobal('EventSource', FakeEventSource)
    const { fetch } = fakeFetch({ 'POST /api/jobs': [201, makeJob('3', 0, 4, { state: 'queued' })] })
    const client = new LitchiClient({ token: 'lt_tok', fetch, storage: new MemoryStorage() })
    expect(FakeWebSocket.instances).toHaveLength(0)
    const heard: (string | null)[] = []
    client.subscribe('3', (job) => heard.push(job ? job.state : null))
    client.subscribeJobs(() => {})
    expect(FakeWebSocket.instances).toHaveLength(1)
    expect(FakeWebSocket.latest().protocols).toEqual(['litchi.v1', 'bearer.lt_tok'])
    await client.createJob({ urls: ['http://127.0.0.1/x.png'] })
    expect(heard).toEqual(['queued'])
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    expect(client.live.connectionDisplay).toBe('live')
    socket.serverSend({ type: 'progress', seq: 1, job: makeJob('3', 4, 4) })
    client.live.flush()
    expect(heard).toEqual(['queued', 'done'])
    client.close()
    expect(socket.closedByClient).toBe(true)
  })
})
