/*
 * The live state (LiveJobs) end to end with a fake WebSocket: seq order, duplicates,
 * gaps (→ resume), snapshot replace, counts that never go backwards, one
 * batch per animation frame, and the reload path (paint from sessionStorage,
 * first frame is `resume`).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { freshLive, useLive } from './helpers.js'
import { PERSIST_KEY } from '../src/live/persist.js'
import { FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from '../src/testing.js'

let clock: ManualFrameClock
let storage: MemoryStorage

function startLive(options: { storage?: MemoryStorage } = {}) {
  const live = useLive()
  live.start({ environment: makeEnvironment(), clock, storage: options.storage ?? storage })
  return live
}

function connectedLive() {
  const live = startLive()
  const socket = FakeWebSocket.latest()
  socket.serverOpen()
  return { live, socket }
}

beforeEach(() => {
  vi.useFakeTimers()
  freshLive()
  resetFakes()
  clock = new ManualFrameClock()
  storage = new MemoryStorage()
})

afterEach(() => {
  useLive().stop()
  vi.useRealTimers()
})

describe('seq ordering', () => {
  it('applies a hello and then progress in seq order', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 10, jobs: [makeJob('1', 0)] })
    socket.serverSend({ type: 'progress', seq: 11, job: makeJob('1', 5) })
    socket.serverSend({ type: 'progress', seq: 12, job: makeJob('1', 9) })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(9)
    expect(live.lastSeq).toBe(12)
    expect(live.synced).toBe(true)
  })

  it('drops duplicates (seq <= last)', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 0)] })
    socket.serverSend({ type: 'progress', seq: 2, job: makeJob('1', 7) })
    socket.serverSend({ type: 'progress', seq: 2, job: makeJob('1', 3, 100, { name: 'duplicate' }) })
    socket.serverSend({ type: 'job', seq: 1, event: 'created', job: makeJob('9', 0) })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(7)
    expect(live.job('1')?.name).toBe('job 1')
    expect(live.job('9')).toBeUndefined()
    expect(live.lastSeq).toBe(2)
  })

  it('on a gap sends one resume since last and applies the held message once the gap fills', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 5, jobs: [makeJob('1', 0), makeJob('2', 0)] })
    socket.serverSend({ type: 'progress', seq: 8, job: makeJob('1', 30) })
    socket.serverSend({ type: 'progress', seq: 9, job: makeJob('1', 40) })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(0)
    expect(live.lastSeq).toBe(5)
    const resumes = socket.sent.filter((m) => (m as { type: string }).type === 'resume')
    expect(resumes).toEqual([{ type: 'resume', since: 5 }])

    // The replay: 6 and 7 are new, 8 and 9 arrive again (already held, now duplicates).
    socket.serverSend({ type: 'progress', seq: 6, job: makeJob('2', 10) })
    socket.serverSend({ type: 'progress', seq: 7, job: makeJob('1', 20) })
    socket.serverSend({ type: 'progress', seq: 8, job: makeJob('1', 30) })
    socket.serverSend({ type: 'progress', seq: 9, job: makeJob('1', 40) })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(40)
    expect(live.job('2')?.counts.done).toBe(10)
    expect(live.lastSeq).toBe(9)
    expect(socket.sent.filter((m) => (m as { type: string }).type === 'resume')).toHaveLength(1)
  })

  it('reconnects when a gap is not filled in time', async () => {
    const { socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [] })
    socket.serverSend({ type: 'progress', seq: 3, job: makeJob('1', 1) })
    clock.runFrame()
    expect(FakeWebSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(3_100)
    expect(socket.closedByClient).toBe(true)
    expect(FakeWebSocket.instances).toHaveLength(2)
    const next = FakeWebSocket.latest()
    next.serverOpen()
    expect(next.sent[0]).toEqual({ type: 'resume', since: 1 })
  })

  it('a snapshot replaces the state: jobs it lacks are gone, its counts win', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 10), makeJob('2', 5)] })
    clock.runFrame()
    socket.serverSend({ type: 'snapshot', seq: 40, jobs: [makeJob('1', 60), makeJob('3', 1)] })
    clock.runFrame()
    expect(Object.keys(live.jobs).sort()).toEqual(['1', '3'])
    expect(live.job('1')?.counts.done).toBe(60)
    expect(live.lastSeq).toBe(40)
    // Messages the snapshot already covers are duplicates now.
    socket.serverSend({ type: 'progress', seq: 39, job: makeJob('2', 7) })
    clock.runFrame()
    expect(live.job('2')).toBeUndefined()
  })

  it('a hello from a restarted server (lower seq) is accepted as the new baseline', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 500, jobs: [makeJob('1', 10)] })
    clock.runFrame()
    socket.serverClose(1012)
    vi.advanceTimersByTime(1_000)
    const next = FakeWebSocket.latest()
    next.serverOpen()
    expect(next.sent[0]).toEqual({ type: 'resume', since: 500 })
    next.serverSend({ type: 'hello', protocol: 1, seq: 3, jobs: [makeJob('1', 12)] })
    next.serverSend({ type: 'progress', seq: 4, job: makeJob('1', 13) })
    clock.runFrame()
    expect(live.lastSeq).toBe(4)
    expect(live.job('1')?.counts.done).toBe(13)
  })

  it('job created and deleted events add and remove jobs', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [] })
    socket.serverSend({ type: 'job', seq: 2, event: 'created', job: makeJob('7', 0) })
    clock.runFrame()
    expect(live.job('7')).toBeDefined()
    socket.serverSend({ type: 'job', seq: 3, event: 'deleted', job: makeJob('7', 0) })
    clock.runFrame()
    expect(live.job('7')).toBeUndefined()
  })

  it('passes item events to subscribers and subscribes on the socket', () => {
    const { live, socket } = connectedLive()
    const seen: string[] = []
    const unsubscribe = live.subscribeItems('1', { item: (item) => seen.push(item.id), reset: () => {} })
    expect(socket.sent).toContainEqual({ type: 'subscribe', job: '1', items: true })
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 0)] })
    socket.serverSend({ type: 'item', seq: 2, job: '1', item: { id: 'a', url: 'http://x/a.jpg', state: 'done', attempts: 1 } })
    socket.serverSend({ type: 'item', seq: 3, job: '2', item: { id: 'b', url: 'http://x/b.jpg', state: 'done', attempts: 1 } })
    clock.runFrame()
    expect(seen).toEqual(['a'])
    unsubscribe()
    expect(socket.sent).toContainEqual({ type: 'unsubscribe', job: '1' })
  })
})

describe('epochs and item side messages', () => {
  it('sends the hello epoch back with resume and keeps it across a reload', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, epoch: 'boot7-1', seq: 20, jobs: [] })
    socket.serverSend({ type: 'progress', seq: 22, job: makeJob('1', 1) })
    clock.runFrame()
    expect(socket.sent).toContainEqual({ type: 'resume', since: 20, epoch: 'boot7-1' })
    live.persistNow()
    live.stop()
    freshLive()
    resetFakes()
    useLive().start({ environment: makeEnvironment(), clock, storage })
    FakeWebSocket.latest().serverOpen()
    expect(FakeWebSocket.latest().sent[0]).toEqual({ type: 'resume', since: 20, epoch: 'boot7-1' })
  })

  it('routes items_reset to the job’s item feed and ignores subscription acks', () => {
    const { live, socket } = connectedLive()
    const reset = vi.fn()
    live.subscribeItems('1', { item: () => {}, reset })
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 0)] })
    socket.serverSend({ type: 'subscribed', seq: 1, job: 1, items: true })
    socket.serverSend({ type: 'items_reset', seq: 1, job: 1 })
    socket.serverSend({ type: 'items_reset', seq: 1, job: 2 })
    clock.runFrame()
    expect(reset).toHaveBeenCalledOnce()
    expect(live.lastSeq).toBe(1)
  })
})

describe('counts never go backwards', () => {
  it('keeps done from going down when stale data arrives out of band', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 50)] })
    clock.runFrame()
    live.upsertJob(makeJob('1', 20)) // e.g. an HTTP answer read before the last event
    expect(live.job('1')?.counts.done).toBe(50)
    socket.serverSend({ type: 'snapshot', seq: 2, jobs: [makeJob('1', 45)] })
    clock.runFrame()
    expect(live.job('1')?.counts.done).toBe(50)
  })

  it('shows a monotonic done count for any delivery order of a job’s events', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 0, jobs: [makeJob('1', 0, 1000)] })
    clock.runFrame()
    const events = Array.from({ length: 200 }, (_, i) => ({ type: 'progress', seq: i + 1, job: makeJob('1', (i + 1) * 5, 1000) }))
    // Deterministic shuffle in chunks: messages arrive out of order and repeated.
    let state = 42
    const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const delivery = [...events, ...events.slice(0, 50)].sort(() => rand() - 0.5)
    let shown = 0
    for (let i = 0; i < delivery.length; i++) {
      socket.serverSend(delivery[i])
      if (i % 7 === 0) {
        clock.runFrame()
        const done = live.job('1')!.counts.done
        expect(done).toBeGreaterThanOrEqual(shown)
        shown = done
      }
    }
    // Whatever the order, the missing ones are asked for and the end state is exact.
    clock.runFrame()
    expect(live.job('1')!.counts.done).toBe(1000)
    expect(live.lastSeq).toBe(200)
  })

  it('lets failed go down only in order or as the answer to "retry failed"', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 80, 100, { failed: 20, state: 'done' })] })
    clock.runFrame()
    live.upsertJob(makeJob('1', 75, 100, { failed: 5, state: 'running' })) // an HTTP answer read earlier
    expect(live.job('1')!.counts.failed).toBe(20)
    expect(live.job('1')!.counts.done).toBe(80)
    live.upsertJob(makeJob('1', 80, 100, { failed: 0, state: 'running' }), { requeue: true })
    expect(live.job('1')!.counts.failed).toBe(0)
    socket.serverSend({ type: 'progress', seq: 2, job: makeJob('1', 85, 100, { failed: 3, state: 'running' }) })
    socket.serverSend({ type: 'progress', seq: 3, job: makeJob('1', 90, 100, { failed: 0, state: 'running' }) })
    clock.runFrame()
    expect(live.job('1')!.counts.failed).toBe(0)
    expect(live.job('1')!.counts.done).toBe(90)
  })
})

describe('batching', () => {
  it('applies a burst once, on the next animation frame', () => {
    const { live, socket } = connectedLive()
    let updates = 0
    const stopWatching = live.onChange((change) => {
      if (change.jobs) updates++
    })
    socket.serverSend({ type: 'hello', protocol: 1, seq: 0, jobs: [makeJob('1', 0, 1000)] })
    for (let seq = 1; seq <= 300; seq++) socket.serverSend({ type: 'progress', seq, job: makeJob('1', seq, 1000) })
    expect(live.job('1')).toBeUndefined()
    expect(updates).toBe(0)
    expect(clock.pendingFrames).toBe(1)
    clock.runFrame()
    expect(updates).toBe(1)
    expect(live.job('1')?.counts.done).toBe(300)
    expect(clock.pendingFrames).toBe(0)
    stopWatching()
  })

  it('uses a timer instead of animation frames while the tab is hidden', () => {
    const { live, socket } = connectedLive()
    clock.hidden = true
    socket.serverSend({ type: 'hello', protocol: 1, seq: 0, jobs: [makeJob('1', 3)] })
    expect(clock.pendingFrames).toBe(0)
    expect(live.job('1')).toBeUndefined()
    vi.advanceTimersByTime(150)
    expect(live.job('1')?.counts.done).toBe(3)
  })
})

describe('reload', () => {
  it('paints the saved numbers before any socket opens and resumes from the saved seq', () => {
    const first = connectedLive()
    first.socket.serverSend({ type: 'hello', protocol: 1, seq: 77, jobs: [makeJob('1', 42, 100, { name: 'holiday' })] })
    clock.runFrame()
    first.live.persistNow()
    first.live.stop()

    // A new page: a fresh Pinia, the same tab's sessionStorage.
    freshLive()
    resetFakes()
    const live = useLive()
    live.start({ environment: makeEnvironment(), clock, storage })
    expect(live.job('1')?.counts.done).toBe(42)
    expect(live.job('1')?.name).toBe('holiday')
    expect(live.restored).toBe(true)
    const socket = FakeWebSocket.latest()
    expect(socket.sent).toHaveLength(0)
    socket.serverOpen()
    expect(socket.sent[0]).toEqual({ type: 'resume', since: 77 })
  })

  it('saves the state throttled, after messages are applied', () => {
    const { socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 3, jobs: [makeJob('1', 1)] })
    clock.runFrame()
    expect(storage.getItem(PERSIST_KEY)).toBeNull()
    vi.advanceTimersByTime(600)
    expect(JSON.parse(storage.getItem(PERSIST_KEY)!).seq).toBe(3)
  })

  it('sign-out forgets the saved state', () => {
    const { live, socket } = connectedLive()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 3, jobs: [makeJob('1', 1)] })
    clock.runFrame()
    live.persistNow()
    live.stop(true)
    expect(storage.getItem(PERSIST_KEY)).toBeNull()
    expect(Object.keys(live.jobs)).toHaveLength(0)
  })
})

describe('one connection', () => {
  it('start() twice opens one socket; the bearer token goes in the subprotocol', () => {
    const live = useLive()
    live.start({ environment: makeEnvironment({ token: () => 'secret-token' }), clock, storage })
    live.start({ environment: makeEnvironment(), clock, storage })
    expect(FakeWebSocket.instances).toHaveLength(1)
    expect(FakeWebSocket.latest().url).toBe('ws://127.0.0.1:9527/api/ws')
    expect(FakeWebSocket.latest().protocols).toEqual(['litchi.v1', 'bearer.secret-token'])
  })
})
