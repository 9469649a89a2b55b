/*
 * Puts sequenced server messages in order: the heart of "never miss a change,
 * never see a count go backwards". Rules (docs/protocol.md):
 *
 *  - hello / snapshot are full states: always accepted, they reset `last`
 *    (a restarted server may start its counter again).
 *  - seq <= last is a duplicate (a replay overlapping what we have): dropped.
 *  - seq == last + 1 is applied, then any held messages that now follow.
 *  - seq >  last + 1 is a gap: the message is held (bounded) and the caller
 *    is told once to ask for `resume since last`; the replay fills the gap.
 *
 * `item` messages carry the current seq without advancing it (they go only
 * to watchers subscribed to the job, so they cannot take part in the +1
 * rule): they pass straight through, never held, never moving `last`. They
 * are idempotent upserts, so a replayed one does no harm.
 */
import type { SequencedMessage } from '../protocol.js'

export interface SequencerResult {
  /** Messages to apply, in order. */
  ready: SequencedMessage[]
  /** Set when a new gap opened: ask the server for everything after this seq. */
  resumeSince: number | null
}

/** Held messages beyond this are dropped; the replay or a snapshot brings them back. */
const MAX_HELD = 2000

export class Sequencer {
  private lastSeq: number
  private readonly held = new Map<number, SequencedMessage>()
  private gapOpen = false

  /** `last` = -1 when nothing is known yet (accept whatever comes first). */
  constructor(last = -1) {
    this.lastSeq = last
  }

  get last(): number {
    return this.lastSeq
  }

  /** True while messages are missing between `last` and a held one. */
  get hasGap(): boolean {
    return this.gapOpen
  }

  /** Forget held messages (a new connection replays from `last` anyway). */
  resetConnection(): void {
    this.held.clear()
    this.gapOpen = false
  }

  push(message: SequencedMessage): SequencerResult {
    const ready: SequencedMessage[] = []
    let resumeSince: number | null = null
    if (message.type === 'item') return { ready: [message], resumeSince }

    if (message.type === 'hello' || message.type === 'snapshot') {
      this.lastSeq = message.seq
      ready.push(message)
      for (const seq of [...this.held.keys()]) if (seq <= this.lastSeq) this.held.delete(seq)
      this.drain(ready)
      return { ready, resumeSince }
    }

    if (this.lastSeq < 0) {
      // Nothing known yet (no hello, nothing persisted): start here.
      this.lastSeq = message.seq
      ready.push(message)
      this.drain(ready)
      return { ready, resumeSince }
    }

    if (message.seq <= this.lastSeq) return { ready, resumeSince }

    if (message.seq === this.lastSeq + 1) {
      this.lastSeq = message.seq
      ready.push(message)
      this.drain(ready)
      return { ready, resumeSince }
    }

    // A gap: hold this one and ask once for the missing range.
    if (this.held.size < MAX_HELD) this.held.set(message.seq, message)
    if (!this.gapOpen) {
      this.gapOpen = true
      resumeSince = this.lastSeq
    }
    return { ready, resumeSince }
  }

  private drain(ready: SequencedMessage[]): void {
    for (;;) {
      const next = this.held.get(this.lastSeq + 1)
      if (!next) break
      this.held.delete(this.lastSeq + 1)
      this.lastSeq += 1
      ready.push(next)
    }
    if (this.held.size === 0) this.gapOpen = false
    else {
      // Anything held at or below last is stale now.
      for (const seq of [...this.held.keys()]) if (seq <= this.lastSeq) this.held.delete(seq)
      this.gapOpen = this.held.size > 0
    }
  }
}
