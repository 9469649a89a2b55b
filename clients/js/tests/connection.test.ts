/*
 * Reconnect timing and transport choice, with fake timers and fake
 * transports: full-jitter backoff within [0, min(cap, base·2^n)], the cap,
 * immediate reconnects on online / visible / pageshow, close on pagehide,
 * fallback WS → SSE → polling only when HTTP works, WS retried later, 401 stops.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { backoffCeiling, backoffDelay } from '../src/live/backoff.js'
import type { LiveStartOptions } from '../src/live/live-jobs.js'
import { freshLive, useLive } from './helpers.js'
import type { LiveConnectionEnvironment } from '../src/live/connection.js'
import type { Job } from '../src/protocol.js'
import { FakeEventSource, FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from '../src/testing.js'

let clock: ManualFrameClock

function start(environment: Partial<LiveConnectionEnvironment> = {}, extra: Partial<LiveStartOptions> = {}) {
  const env = makeEnvironment(environment)
  const live = useLive()
  live.start({ environment: env, clock, storage: new MemoryStorage(), ...extra })
  return { live, env }
}

beforeEach(() => {
  vi.useFakeTimers()
  freshLive()
  resetFakes()
  clock = new ManualFrameClock()
})

afterEach(() => {
  useLive().stop()
  vi.useRealTimers()
})

describe('backoff with full jitter', () => {
  const policy = { baseMs: 500, capMs: 30_000 }

  it('stays within [0, min(cap, base * 2^n)] for every attempt', () => {
    for (let failures = 0; failures < 40; failures++) {
      const ceiling = Math.min(30_000, 500 * 2 ** failures)
      expect(backoffCeiling(policy, failures)).toBe(ceiling)
      expect(backoffDelay(policy, failures, () => 0)).toBe(0)
      expect(backoffDelay(policy, failures, () => 0.999999)).toBeLessThan(ceiling)
      expect(backoffDelay(policy, failures, () => 0.999999)).toBeGreaterThanOrEqual(ceiling - 1)
      for (let i = 0; i < 20; i++) {
        const delay = backoffDelay(policy, failures)
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThan(ceiling)
      }
    }
  })

  it('respects the cap even for huge attempt counts', () => {
    expect(backoffCeiling(policy, 1_000_000)).toBe(30_000)
    expect(backoffDelay(policy, 1_000_000, () => 0.5)).toBe(15_000)
  })

  it('schedules reconnects with the jittered delays while the server is down', async () => {
    const randoms = [0.5, 0.25, 0.75, 1 - 1e-9]
    let call = 0
    const { live } = start({
      checkAuth: vi.fn(async () => 'unreachable' as const),
      random: () => randoms[call++ % randoms.length],
    })
    FakeWebSocket.latest().serverOpen()
    FakeWebSocket.latest().serverClose(1006) // dropped: first retry within [0, 500)

    const expected = [0.5 * 500, 0.25 * 1000, 0.75 * 2000, Math.floor((1 - 1e-9) * 4000)]
    for (const delay of expected) {
      const sockets = FakeWebSocket.instances.length
      expect(live.connectionDisplay).toBe('reconnecting')
      expect(live.status.retryAt! - Date.now()).toBe(delay)
      await vi.advanceTimersByTimeAsync(Math.max(0, delay - 1))
      expect(FakeWebSocket.instances.length).toBe(sockets)
      await vi.advanceTimersByTimeAsync(1)
      expect(FakeWebSocket.instances.length).toBe(sockets + 1)
      FakeWebSocket.latest().serverClose(1006) // the server is still down
      await vi.advanceTimersByTimeAsync(0)
    }
    // Never switched transport: HTTP did not work either, so it is the server.
    expect(FakeEventSource.instances).toHaveLength(0)
  })

  it('shows offline after many failures and the Retry button reconnects at once', async () => {
    const { live } = start({ checkAuth: vi.fn(async () => 'unreachable' as const), random: () => 0.99 })
    for (let i = 0; i < 8; i++) {
      FakeWebSocket.latest().serverClose(1006)
      await vi.advanceTimersByTimeAsync(0)
      if (i < 7) await vi.advanceTimersByTimeAsync(live.status.retryAt! - Date.now())
    }
    expect(live.connectionDisplay).toBe('offline')
    expect(live.status.retryAt! - Date.now()).toBeLessThanOrEqual(30_000)
    const before = FakeWebSocket.instances.length
    live.retryNow()
    expect(FakeWebSocket.instances.length).toBe(before + 1)
    FakeWebSocket.latest().serverOpen()
    expect(live.connectionDisplay).toBe('live')
  })
})

describe('page lifecycle', () => {
  async function dropAndWait(environment: Partial<LiveConnectionEnvironment> = {}) {
    const started = start({ checkAuth: vi.fn(async () => 'unreachable' as const), random: () => 0.99, ...environment })
    FakeWebSocket.latest().serverOpen()
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(495)
    expect(FakeWebSocket.instances).toHaveLength(2)
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    expect(started.live.status.retryAt! - Date.now()).toBeGreaterThan(500)
    return started
  }

  it.each(['online', 'pageshow'])('reconnects at once on %s', async (event) => {
    const { env } = await dropAndWait()
    const before = FakeWebSocket.instances.length
    env.window.dispatchEvent(new Event(event))
    expect(FakeWebSocket.instances.length).toBe(before + 1)
  })

  it('reconnects at once when the tab becomes visible, not when it hides', async () => {
    let hidden = true
    const { env } = await dropAndWait({ isHidden: () => hidden })
    const before = FakeWebSocket.instances.length
    env.document.dispatchEvent(new Event('visibilitychange'))
    expect(FakeWebSocket.instances.length).toBe(before)
    hidden = false
    env.document.dispatchEvent(new Event('visibilitychange'))
    expect(FakeWebSocket.instances.length).toBe(before + 1)
  })

  it('does not open a second socket when already live', () => {
    const { env } = start()
    FakeWebSocket.latest().serverOpen()
    env.window.dispatchEvent(new Event('online'))
    env.window.dispatchEvent(new Event('pageshow'))
    expect(FakeWebSocket.instances).toHaveLength(1)
  })

  it('closes on pagehide and does not reconnect until pageshow', async () => {
    const { env } = start()
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    env.window.dispatchEvent(new Event('pagehide'))
    expect(socket.closedByClient).toBe(true)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeWebSocket.instances).toHaveLength(1)
    env.window.dispatchEvent(new Event('pageshow'))
    expect(FakeWebSocket.instances).toHaveLength(2)
  })

  it('treats a silent socket as dead and reconnects (pings meanwhile)', async () => {
    start()
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    await vi.advanceTimersByTimeAsync(20_000)
    expect(socket.sent).toContainEqual({ type: 'ping' })
    await vi.advanceTimersByTimeAsync(40_000)
    expect(socket.closedByClient).toBe(true)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(FakeWebSocket.instances.length).toBeGreaterThan(1)
  })
})

describe('transport fallback', () => {
  it('goes WS → SSE → polling when each fails before opening while HTTP works', async () => {
    const jobs: Job[] = [makeJob('1', 10)]
    const listJobs = vi.fn(async () => jobs)
    const { live } = start({
      poll: { listJobs, getProgress: vi.fn(async (id: string) => makeJob(id, 20)), isUnauthorized: () => false, isGone: () => false },
    })
    expect(live.transport).toBe('ws')
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(FakeWebSocket.instances).toHaveLength(2)
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    // Switched at once, without a visible state change to offline.
    expect(FakeEventSource.instances).toHaveLength(1)
    expect(live.connectionDisplay).not.toBe('offline')

    FakeEventSource.latest().fail()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(FakeEventSource.instances).toHaveLength(2)
    FakeEventSource.latest().fail()
    await vi.advanceTimersByTimeAsync(0)
    expect(live.transport).toBe('poll')
    await vi.advanceTimersByTimeAsync(0)
    clock.runFrame()
    expect(live.connectionDisplay).toBe('live')
    expect(live.job('1')?.counts.done).toBe(10)

    // Polling asks for active jobs' progress each interval; counts move.
    await vi.advanceTimersByTimeAsync(1_000)
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(20)
  })

  it('gives up on a socket that hangs while connecting and falls back', async () => {
    const { live } = start({}, { connection: { connectTimeoutMs: 5_000 } })
    await vi.advanceTimersByTimeAsync(4_999)
    expect(FakeWebSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeWebSocket.instances[0].closedByClient).toBe(true)
    await vi.advanceTimersByTimeAsync(1_000) // backoff, then a second attempt that hangs too
    expect(FakeWebSocket.instances).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(live.transport).toBe('sse')
    FakeEventSource.latest().serverOpen()
    expect(live.connectionDisplay).toBe('live')
  })

  it('uses SSE with the resume point and applies its messages in seq order', async () => {
    const { live } = start({ WebSocket: null })
    const source = FakeEventSource.latest()
    expect(source.url).toBe('/api/events')
    source.serverOpen()
    expect(live.connectionDisplay).toBe('live')
    source.serverSend({ type: 'hello', protocol: 1, seq: 4, jobs: [makeJob('1', 1)] } as never)
    source.serverSend({ type: 'progress', seq: 5, job: makeJob('1', 2) } as never, 'progress')
    source.serverSend({ type: 'progress', seq: 5, job: makeJob('1', 2) } as never)
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(2)
    source.fail()
    await vi.advanceTimersByTimeAsync(1_000)
    expect(FakeEventSource.latest().url).toBe('/api/events?since=5')
  })

  it('keeps trying WebSocket while on a fallback and takes it over when it opens', async () => {
    const { live } = start({}, { connection: { webSocketRetryMs: 10_000 } })
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(1_000)
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    const source = FakeEventSource.latest()
    source.serverOpen()
    source.serverSend({ type: 'hello', protocol: 1, seq: 9, jobs: [makeJob('1', 1)] } as never)
    clock.runFrame()
    expect(live.transport).toBe('sse')

    await vi.advanceTimersByTimeAsync(10_000)
    expect(FakeWebSocket.instances).toHaveLength(3)
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    expect(live.transport).toBe('ws')
    expect(source.closed).toBe(true)
    expect(socket.sent[0]).toEqual({ type: 'resume', since: 9 })
    socket.serverSend({ type: 'progress', seq: 10, job: makeJob('1', 5) })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(5)
  })

  it('stops and reports when the credentials are refused', async () => {
    const onUnauthorized = vi.fn()
    const { live } = start({ checkAuth: vi.fn(async () => 'unauthorized' as const) }, { onUnauthorized })
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    expect(onUnauthorized).toHaveBeenCalledOnce()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(FakeWebSocket.instances).toHaveLength(1)
    expect(FakeEventSource.instances).toHaveLength(0)
    expect(live.status.state).toBe('idle')
  })
})
