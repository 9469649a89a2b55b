/*
 * The reducer on plain objects, no store or socket: a batch of messages →
 * the next job map. Seq order and duplicates, gaps (→ one resume, with the
 * epoch current at that message), full states replacing the map, deletes,
 * polled jobs, item side effects in order, the input never mutated, and no
 * count going backwards whatever the delivery order.
 */
import { describe, expect, it } from 'vitest'
import type { Item, ServerMessage } from '../src/protocol.js'
import { LiveReducer, replaceJobs, withJob, withoutJob, type Incoming, type JobMap } from '../src/live/reducer.js'
import { makeJob } from '../src/testing.js'

const msg = (message: ServerMessage): Incoming => ({ kind: 'message', message })
const progress = (seq: number, id: string, done: number, total = 100): Incoming =>
  msg({ type: 'progress', seq, job: makeJob(id, done, total) })
const hello = (seq: number, jobs = [makeJob('1', 0)], epoch?: string): Incoming =>
  msg({ type: 'hello', protocol: 1, seq, jobs, ...(epoch ? { epoch } : {}) })
const item = (id: string): Item => ({ id, url: `http://x/${id}.jpg`, state: 'done', attempts: 1 })

/** Records the effects in order, as the store would run them. */
function recorder(reducer?: LiveReducer) {
  const effects: string[] = []
  const resumeFrames: unknown[] = []
  return {
    effects,
    resumeFrames,
    sink: {
      item: (jobId: string, entry: Item) => effects.push(`item ${jobId}/${entry.id}`),
      itemsReset: (jobId: string) => effects.push(`reset ${jobId}`),
      resume: (since: number) => {
        effects.push(`resume ${since}`)
        if (reducer) resumeFrames.push(reducer.resumeFrame(since))
      },
    },
  }
}

describe('LiveReducer.apply', () => {
  it('applies a hello then progress in order and reports what it touched', () => {
    const reducer = new LiveReducer()
    const { sink, effects } = recorder()
    const result = reducer.apply({}, [hello(10), progress(11, '1', 5), progress(12, '1', 9)], sink)
    expect(result.jobs?.['1'].counts.done).toBe(9)
    expect(result.replaced).toBe(true)
    expect(result.touched).toEqual(['1', '1', '1'])
    expect(reducer.lastSeq).toBe(12)
    expect(effects).toEqual([])
  })

  it('never mutates the map it was given', () => {
    const reducer = new LiveReducer(1)
    const before: JobMap = { '1': makeJob('1', 3), '2': makeJob('2', 4) }
    const frozen = JSON.stringify(before)
    const result = reducer.apply(
      before,
      [progress(2, '1', 8), msg({ type: 'job', seq: 3, event: 'deleted', job: makeJob('2', 4) })],
      recorder().sink,
    )
    expect(JSON.stringify(before)).toBe(frozen)
    expect(result.jobs).not.toBe(before)
    expect(Object.keys(result.jobs!)).toEqual(['1'])
  })

  it('returns no map when nothing in the batch changed a job', () => {
    const reducer = new LiveReducer(5)
    const { sink, effects } = recorder()
    const result = reducer.apply(
      { '1': makeJob('1', 1) },
      [progress(4, '1', 50), msg({ type: 'pong' }), msg({ type: 'subscribed', job: '1' }), msg({ type: 'items_reset', job: '1' })],
      sink,
    )
    expect(result).toEqual({ jobs: null, touched: [], replaced: false })
    expect(effects).toEqual(['reset 1'])
    expect(reducer.lastSeq).toBe(5)
  })

  it('drops duplicates and asks once for a gap, applying the held messages when it fills', () => {
    const reducer = new LiveReducer()
    const first = recorder()
    let jobs = reducer.apply({}, [hello(5, [makeJob('1', 0), makeJob('2', 0)]), progress(8, '1', 30), progress(9, '1', 40)], first.sink).jobs!
    expect(jobs['1'].counts.done).toBe(0)
    expect(first.effects).toEqual(['resume 5'])
    expect(reducer.hasGap).toBe(true)

    // The replay: 6 and 7 are new, 8 and 9 come again.
    const second = recorder()
    jobs = reducer.apply(jobs, [progress(6, '2', 10), progress(7, '1', 20), progress(8, '1', 30), progress(9, '1', 40)], second.sink).jobs!
    expect(jobs['1'].counts.done).toBe(40)
    expect(jobs['2'].counts.done).toBe(10)
    expect(reducer.lastSeq).toBe(9)
    expect(reducer.hasGap).toBe(false)
    expect(second.effects).toEqual([])
  })

  it('asks for the resume with the epoch of a hello earlier in the same batch', () => {
    const reducer = new LiveReducer(3, 'old-epoch')
    const { sink, effects, resumeFrames } = recorder(reducer)
    reducer.apply({}, [hello(20, [], 'boot-2'), progress(22, '1', 1)], sink)
    expect(effects).toEqual(['resume 20'])
    expect(resumeFrames).toEqual([{ type: 'resume', since: 20, epoch: 'boot-2' }])
    expect(reducer.epoch).toBe('boot-2')
  })

  it('asks for the resume at the message that opened the gap, not at the end of the batch', () => {
    // A one-way transport answers a resume by reconnecting at once, reading lastSeq then.
    const reducer = new LiveReducer()
    const seenLast: number[] = []
    const result = reducer.apply({}, [hello(5), progress(7, '1', 7), progress(6, '1', 6)], {
      ...recorder().sink,
      resume: (since) => seenLast.push(since, reducer.lastSeq),
    })
    expect(seenLast).toEqual([5, 5])
    expect(reducer.lastSeq).toBe(7)
    expect(result.jobs!['1'].counts.done).toBe(7)
  })

  it('keeps the epoch when a snapshot carries none, and sends none before any is known', () => {
    const reducer = new LiveReducer()
    expect(reducer.resumeFrame(4)).toEqual({ type: 'resume', since: 4 })
    reducer.apply({}, [hello(1, [], 'e-1'), msg({ type: 'snapshot', seq: 2, jobs: [] })], recorder().sink)
    expect(reducer.epoch).toBe('e-1')
    expect(reducer.resumeFrame(2)).toEqual({ type: 'resume', since: 2, epoch: 'e-1' })
  })

  it('lets a snapshot replace the map: jobs it lacks are gone, no count goes down', () => {
    const reducer = new LiveReducer()
    const start = reducer.apply({}, [hello(1, [makeJob('1', 50), makeJob('2', 5)])], recorder().sink).jobs!
    const result = reducer.apply(start, [msg({ type: 'snapshot', seq: 40, jobs: [makeJob('1', 45), makeJob('3', 1)] })], recorder().sink)
    expect(Object.keys(result.jobs!).sort()).toEqual(['1', '3'])
    expect(result.jobs!['1'].counts.done).toBe(50)
    expect(result.replaced).toBe(true)
    expect(reducer.lastSeq).toBe(40)
  })

  it('adds and removes jobs on job events', () => {
    const reducer = new LiveReducer(1)
    const created = reducer.apply({}, [msg({ type: 'job', seq: 2, event: 'created', job: makeJob('7', 0) })], recorder().sink)
    expect(created.jobs!['7']).toBeDefined()
    const deleted = reducer.apply(created.jobs!, [msg({ type: 'job', seq: 3, event: 'deleted', job: makeJob('7', 0) })], recorder().sink)
    expect(deleted.jobs).toEqual({})
    expect(deleted.touched).toEqual(['7'])
    expect(deleted.replaced).toBe(false)
  })

  it('merges a partial poll and replaces the map with a complete one', () => {
    const reducer = new LiveReducer()
    const jobs: JobMap = { '1': makeJob('1', 30), '2': makeJob('2', 10) }
    const partial = reducer.apply(jobs, [{ kind: 'polled', jobs: [makeJob('1', 20)], complete: false }], recorder().sink)
    expect(Object.keys(partial.jobs!).sort()).toEqual(['1', '2'])
    expect(partial.jobs!['1'].counts.done).toBe(30)
    expect(partial.replaced).toBe(false)

    const complete = reducer.apply(jobs, [{ kind: 'polled', jobs: [makeJob('2', 12)], complete: true }], recorder().sink)
    expect(Object.keys(complete.jobs!)).toEqual(['2'])
    expect(complete.jobs!['2'].counts.done).toBe(12)
    expect(complete.replaced).toBe(true)
    // Polling carries no seq: it neither moves nor needs the seq position.
    expect(reducer.lastSeq).toBe(-1)
  })

  it('hands item events and resets to the effects in arrival order, without moving seq', () => {
    const reducer = new LiveReducer()
    const { sink, effects } = recorder()
    reducer.apply(
      {},
      [
        hello(1),
        msg({ type: 'item', seq: 1, job: '1', item: item('a') }),
        msg({ type: 'items_reset', job: '1' }),
        msg({ type: 'item', seq: 1, job: '2', item: item('b') }),
        progress(3, '1', 4),
      ],
      sink,
    )
    expect(effects).toEqual(['item 1/a', 'reset 1', 'item 2/b', 'resume 1'])
    expect(reducer.lastSeq).toBe(1)
  })

  it('forgets held messages on a new connection', () => {
    const reducer = new LiveReducer(1)
    reducer.apply({}, [progress(3, '1', 3)], recorder().sink)
    expect(reducer.hasGap).toBe(true)
    reducer.resetConnection()
    expect(reducer.hasGap).toBe(false)
    const result = reducer.apply({}, [progress(2, '1', 2)], recorder().sink)
    expect(result.jobs!['1'].counts.done).toBe(2)
    expect(reducer.lastSeq).toBe(2)
  })

  it('shows a monotonic done count for any delivery order, and the exact end state after the replay', () => {
    const reducer = new LiveReducer()
    let jobs = reducer.apply({}, [hello(0, [makeJob('1', 0, 1000)])], recorder().sink).jobs!
    const events = Array.from({ length: 200 }, (_, i) => progress(i + 1, '1', (i + 1) * 5, 1000))
    let state = 7
    const rand = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const delivery = [...events, ...events.slice(0, 60)].sort(() => rand() - 0.5)
    const resumes: number[] = []
    let shown = 0
    for (let i = 0; i < delivery.length; i += 9) {
      jobs = reducer.apply(jobs, delivery.slice(i, i + 9), { ...recorder().sink, resume: (since) => resumes.push(since) }).jobs ?? jobs
      expect(jobs['1'].counts.done).toBeGreaterThanOrEqual(shown)
      shown = jobs['1'].counts.done
    }
    // The server answers each resume by replaying everything after it.
    for (const since of resumes) jobs = reducer.apply(jobs, events.slice(since), recorder().sink).jobs ?? jobs
    expect(jobs['1'].counts.done).toBe(1000)
    expect(reducer.lastSeq).toBe(200)
    expect(reducer.hasGap).toBe(false)
  })
})

describe('pure map helpers', () => {
  it('withJob cannot lower counts from an unordered HTTP answer unless it answers "retry failed"', () => {
    const jobs: JobMap = { '1': makeJob('1', 80, 100, { failed: 20, state: 'done' }) }
    const stale = withJob(jobs, makeJob('1', 75, 100, { failed: 5, state: 'running' }))
    expect(stale['1'].counts).toMatchObject({ done: 80, failed: 20 })
    expect(stale['1'].state).toBe('running')
    expect(jobs['1'].counts.failed).toBe(20) // input untouched
    const retried = withJob(jobs, makeJob('1', 80, 100, { failed: 0, state: 'running' }), { requeue: true })
    expect(retried['1'].counts.failed).toBe(0)
    expect(retried['1'].counts.done).toBe(80)
  })

  it('withoutJob copies without the id, and says when there was nothing to remove', () => {
    const jobs: JobMap = { '1': makeJob('1', 1), '2': makeJob('2', 2) }
    expect(withoutJob(jobs, '3')).toBeNull()
    const next = withoutJob(jobs, '1')!
    expect(Object.keys(next)).toEqual(['2'])
    expect(Object.keys(jobs)).toEqual(['1', '2'])
  })

  it('a cut hello keeps the finished jobs it leaves out and drops the unfinished ones', () => {
    const reducer = new LiveReducer()
    const before: JobMap = {
      old: makeJob('old', 100, 100, { state: 'done' }),
      gone: makeJob('gone', 3, 100, { state: 'running' }),
      live: makeJob('live', 1, 100, { state: 'running' }),
    }
    const cut = msg({ type: 'hello', protocol: 1, seq: 5, jobs: [makeJob('live', 2)], truncated: true })
    const result = reducer.apply(before, [cut], recorder().sink)
    expect(Object.keys(result.jobs!).sort()).toEqual(['live', 'old'])
    expect(result.jobs!.live.counts.done).toBe(2)
    // A whole list still replaces everything.
    const whole = new LiveReducer().apply(before, [hello(5, [makeJob('live', 2)])], recorder().sink)
    expect(Object.keys(whole.jobs!)).toEqual(['live'])
  })

  it('replaceJobs keys by id and merges over what was there', () => {
    expect(replaceJobs({}, [makeJob('a', 1), makeJob('b', 2)])).toEqual({ a: makeJob('a', 1), b: makeJob('b', 2) })
    const merged = replaceJobs({ a: makeJob('a', 9, 100, { name: 'kept' }) }, [makeJob('a', 4, 100, { name: '' })])
    expect(merged.a.counts.done).toBe(9)
    expect(merged.a.name).toBe('kept')
  })
})
