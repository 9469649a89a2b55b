/* The Sequencer on its own: order, duplicates, gaps, held messages, resets. */
import { describe, expect, it } from 'vitest'
import type { SequencedMessage } from '../src/protocol.js'
import { Sequencer } from '../src/live/sequencer.js'
import { makeJob } from '../src/testing.js'

const progress = (seq: number): SequencedMessage => ({ type: 'progress', seq, job: makeJob('1', seq) })
const seqs = (messages: SequencedMessage[]) => messages.map((m) => m.seq)

describe('Sequencer', () => {
  it('passes consecutive messages, drops repeats, reports a gap once', () => {
    const s = new Sequencer(10)
    expect(seqs(s.push(progress(11)).ready)).toEqual([11])
    expect(seqs(s.push(progress(11)).ready)).toEqual([])
    expect(s.push(progress(14))).toEqual({ ready: [], resumeSince: 11 })
    expect(s.push(progress(13))).toEqual({ ready: [], resumeSince: null })
    expect(s.hasGap).toBe(true)
    expect(seqs(s.push(progress(12)).ready)).toEqual([12, 13, 14])
    expect(s.hasGap).toBe(false)
    expect(s.last).toBe(14)
  })

  it('lets a snapshot end a gap and discards what it covers', () => {
    const s = new Sequencer(1)
    s.push(progress(5))
    s.push(progress(8))
    const result = s.push({ type: 'snapshot', seq: 6, jobs: [] })
    expect(seqs(result.ready)).toEqual([6])
    expect(s.hasGap).toBe(true) // 8 is still ahead of 7
    expect(seqs(s.push(progress(7)).ready)).toEqual([7, 8])
  })

  it('starts from the first message when nothing is known', () => {
    const s = new Sequencer()
    expect(seqs(s.push(progress(40)).ready)).toEqual([40])
    expect(s.last).toBe(40)
  })

  it('passes item events straight through without moving last or opening a gap', () => {
    const s = new Sequencer(3)
    const item = (seq: number): SequencedMessage => ({ type: 'item', seq, job: '1', item: { id: 'a', url: '', state: 'done', attempts: 1 } })
    expect(s.push(item(3)).ready).toEqual([item(3)])
    expect(s.push(item(4))).toEqual({ ready: [item(4)], resumeSince: null })
    expect(s.push(item(9))).toEqual({ ready: [item(9)], resumeSince: null })
    expect(s.last).toBe(3)
    expect(s.hasGap).toBe(false)
    // The progress with the seq an item carried is not mistaken for a duplicate.
    expect(seqs(s.push(progress(4)).ready)).toEqual([4])
  })

  it('forgets held messages on a new connection', () => {
    const s = new Sequencer(1)
    s.push(progress(3))
    s.resetConnection()
    expect(s.hasGap).toBe(false)
    expect(seqs(s.push(progress(2)).ready)).toEqual([2])
  })
})
