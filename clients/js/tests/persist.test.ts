/*
 * Only the small state goes to sessionStorage: the last seq and per-job
 * id, name, state, counts and bytes; bounded in jobs and size; no items,
 * URLs or tokens; garbage in storage is ignored, not trusted.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { freshLive, useLive } from './helpers.js'
import {
  decodeLiveState,
  encodeLiveState,
  loadLiveState,
  MAX_PERSISTED_JOBS,
  PERSIST_KEY,
  PERSIST_THROTTLE_MS,
  saveLiveState,
  ThrottledSave,
} from '../src/live/persist.js'
import { FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from '../src/testing.js'

beforeEach(() => {
  vi.useFakeTimers()
  freshLive()
  resetFakes()
})
afterEach(() => {
  useLive().stop()
  vi.useRealTimers()
})

describe('persisted live state', () => {
  it('stores exactly the small keys, and nothing about items or tokens', () => {
    const storage = new MemoryStorage()
    const clock = new ManualFrameClock()
    const live = useLive()
    live.start({ environment: makeEnvironment({ token: () => 'canary-token-123' }), clock, storage })
    const socket = FakeWebSocket.latest()
    socket.serverOpen()
    live.subscribeItems('1', { item: () => {}, reset: () => {} })
    socket.serverSend({ type: 'hello', protocol: 1, epoch: 'b-1', seq: 12, jobs: [makeJob('1', 3, 10, { name: 'cats' })] })
    socket.serverSend({
      type: 'item',
      seq: 13,
      job: '1',
      item: { id: 'i1', url: 'http://127.0.0.1/secret-url.jpg', state: 'done', attempts: 1, sha256: 'a'.repeat(64) },
    })
    clock.runFrame()
    live.persistNow()

    expect([...storage.data.keys()]).toEqual([PERSIST_KEY])
    const text = storage.getItem(PERSIST_KEY)!
    const saved = JSON.parse(text)
    expect(Object.keys(saved).sort()).toEqual(['e', 'jobs', 'seq', 'v'])
    expect(saved.e).toBe('b-1')
    expect(saved.seq).toBe(12) // item events do not advance seq
    expect(saved.jobs).toEqual([['1', 'cats', 'running', 10, 3, 0, 0, 7, 0, 3000]])
    expect(text).not.toContain('canary-token-123')
    expect(text).not.toContain('secret-url')
    expect(text).not.toContain('a'.repeat(64))
  })

  it('keeps at most MAX_PERSISTED_JOBS jobs, active ones first, in a few KiB', () => {
    const jobs = Array.from({ length: 1000 }, (_, i) =>
      makeJob(String(i), i % 3 === 0 ? 5 : 100, 100, { name: 'x'.repeat(500), created: `2025-01-01T00:${String(i % 60).padStart(2, '0')}:00Z` }),
    )
    const text = encodeLiveState(99, jobs)
    const saved = JSON.parse(text)
    expect(saved.jobs).toHaveLength(MAX_PERSISTED_JOBS)
    expect(saved.jobs.every((entry: unknown[]) => entry[2] === 'running')).toBe(true)
    expect(saved.jobs.every((entry: unknown[]) => (entry[1] as string).length <= 80)).toBe(true)
    expect(text.length).toBeLessThan(8 * 1024)
  })

  it('round-trips and rejects garbage', () => {
    const storage = new MemoryStorage()
    saveLiveState(storage, 5, [makeJob('a', 1, 4)])
    const restored = loadLiveState(storage)!
    expect(restored.lastSeq).toBe(5)
    expect(restored.jobs[0]).toMatchObject({ id: 'a', counts: { total: 4, done: 1 }, state: 'running' })
    for (const bad of ['', 'not json', '{"v":2,"seq":1,"jobs":[]}', '{"v":1,"seq":"1","jobs":[]}', '[]', 'null']) {
      expect(decodeLiveState(bad)).toBeNull()
    }
    const mixed = decodeLiveState('{"v":1,"seq":3,"jobs":[["ok","n","weird",1,1,0,0,0,0,0],[1,2],"x"]}')!
    expect(mixed.jobs).toHaveLength(1)
    expect(mixed.jobs[0].state).toBe('queued')
  })

  it('survives a storage that throws (privacy mode, quota)', () => {
    const throwing = {
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('quota')
      },
      removeItem: () => {},
    }
    expect(() => saveLiveState(throwing, 1, [makeJob('1', 1)])).not.toThrow()
    expect(loadLiveState(throwing)).toBeNull()
  })
})

describe('ThrottledSave', () => {
  it('saves once per window however many changes arrive in it', () => {
    const save = vi.fn()
    const saver = new ThrottledSave(save)
    for (let i = 0; i < 100; i++) saver.schedule()
    expect(save).not.toHaveBeenCalled()
    vi.advanceTimersByTime(PERSIST_THROTTLE_MS - 1)
    expect(save).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(save).toHaveBeenCalledOnce()
    expect(saver.pending).toBe(false)
    // The next change starts a new window.
    saver.schedule()
    vi.advanceTimersByTime(PERSIST_THROTTLE_MS)
    expect(save).toHaveBeenCalledTimes(2)
  })

  it('saveNow saves at once and takes the scheduled save’s place', () => {
    const save = vi.fn()
    const saver = new ThrottledSave(save, 200)
    saver.schedule()
    saver.saveNow()
    expect(save).toHaveBeenCalledOnce()
    vi.advanceTimersByTime(1_000)
    expect(save).toHaveBeenCalledOnce()
  })

  it('cancel drops a scheduled save without saving', () => {
    const save = vi.fn()
    const saver = new ThrottledSave(save)
    saver.schedule()
    expect(saver.pending).toBe(true)
    saver.cancel()
    vi.advanceTimersByTime(PERSIST_THROTTLE_MS * 4)
    expect(save).not.toHaveBeenCalled()
  })
})
