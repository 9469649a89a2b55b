/*
 * The Pinia live store is a thin mirror of litchi-client's LiveJobs (whose
 * rules are tested in clients/js/tests): what views read must be reactive
 * and follow the connection: jobs once per animation frame, the badge's
 * state, the seq position, the reload flags, and sign-out forgetting all.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { watch } from 'vue'
import { FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from 'litchi-client/testing'
import { useLiveStore } from '@/stores/live'

let clock: ManualFrameClock
let storage: MemoryStorage

function connectedStore() {
  const live = useLiveStore()
  live.start({ environment: makeEnvironment(), clock, storage })
  const socket = FakeWebSocket.latest()
  socket.serverOpen()
  return { live, socket }
}

beforeEach(() => {
  vi.useFakeTimers()
  setActivePinia(createPinia())
  resetFakes()
  clock = new ManualFrameClock()
  storage = new MemoryStorage()
})

afterEach(() => {
  useLiveStore().stop()
  vi.useRealTimers()
})

describe('the live store over LiveJobs', () => {
  it('re-renders once per animation frame with the burst applied', () => {
    const { live, socket } = connectedStore()
    const seen: number[] = []
    const stop = watch(
      () => live.job('1')?.counts.done,
      (done) => seen.push(done ?? -1),
      { flush: 'sync' },
    )
    socket.serverSend({ type: 'hello', protocol: 1, seq: 0, jobs: [makeJob('1', 0, 500)] })
    for (let seq = 1; seq <= 200; seq++) socket.serverSend({ type: 'progress', seq, job: makeJob('1', seq, 500) })
    expect(seen).toEqual([])
    clock.runFrame()
    expect(seen).toEqual([200])
    expect(live.lastSeq).toBe(200)
    expect(live.synced).toBe(true)
    expect(live.jobList.map((j) => j.id)).toEqual(['1'])
    expect(live.activeJobs).toHaveLength(1)
    stop()
  })

  it('follows the connection state for the badge', async () => {
    const live = useLiveStore()
    live.start({ environment: makeEnvironment({ checkAuth: async () => 'unreachable' }), clock, storage })
    const badges: string[] = []
    const stop = watch(() => live.connectionDisplay, (state) => badges.push(state), { flush: 'sync' })
    FakeWebSocket.latest().serverOpen()
    expect(live.transport).toBe('ws')
    FakeWebSocket.latest().serverClose(1006)
    await vi.advanceTimersByTimeAsync(0)
    expect(badges).toEqual(['live', 'reconnecting'])
    expect(live.status.retryAt).not.toBeNull()
    stop()
  })

  it('paints a reload from the saved copy (restored) until the server speaks', () => {
    const first = connectedStore()
    first.socket.serverSend({ type: 'hello', protocol: 1, seq: 9, jobs: [makeJob('1', 4, 10, { name: 'cats' })] })
    clock.runFrame()
    first.live.persistNow()
    first.live.stop()

    setActivePinia(createPinia())
    resetFakes()
    const { live, socket } = connectedStore()
    expect(live.restored).toBe(true)
    expect(live.job('1')?.name).toBe('cats')
    expect(socket.sent[0]).toEqual({ type: 'resume', since: 9 })
    socket.serverSend({ type: 'snapshot', seq: 12, jobs: [makeJob('1', 6, 10, { name: 'cats' })] })
    clock.runFrame()
    expect(live.restored).toBe(false)
    expect(live.job('1')?.counts.done).toBe(6)
  })

  it('keeps HTTP answers from lowering counts and forgets everything at sign-out', () => {
    const { live, socket } = connectedStore()
    socket.serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 50)] })
    clock.runFrame()
    live.upsertJob(makeJob('1', 20))
    expect(live.job('1')?.counts.done).toBe(50)
    live.upsertJob(makeJob('2', 0, 10, { created: '2030-01-01T00:00:00Z' }))
    expect(live.jobList.map((j) => j.id)).toEqual(['2', '1'])
    live.removeJob('2')
    expect(live.job('2')).toBeUndefined()
    live.stop(true)
    expect(live.jobs).toEqual({})
    expect(live.lastSeq).toBe(-1)
    expect(live.synced).toBe(false)
    expect(live.connectionDisplay).toBe('offline')
  })
})
