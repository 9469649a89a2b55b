/*
 * The live state's transitions, apart from Vue, timers and sockets: given the
 * job map on screen and one batch of incoming entries (server messages,
 * polled jobs), what is the next job map? LiveJobs owns the state
 * and the connection; this owns the rules, so they can be tested on plain
 * objects.
 *
 *  - Sequenced messages go through the Sequencer first (order, duplicates,
 *    gaps; see sequencer.ts), then each accepted one is applied with mergeJob
 *    (no count goes backwards).
 *  - hello / snapshot and a complete job list are full states: the map is
 *    replaced, so jobs they lack are gone (a job deleted while we were away).
 *  - `job` deleted removes the entry; everything else upserts it.
 *
 * The map given is never mutated: a batch edits one copy of it (a full state
 * builds a fresh one), so a burst of 500 messages costs one new object, and
 * LiveJobs assigns it once.
 *
 * What is not state — item events, "re-read the items", "ask for a resume" —
 * goes to the caller's `effects` in arrival order, in the middle of the batch.
 * That timing matters for resumes: the frame carries the epoch as it is at
 * that message, and a one-way transport answers by reconnecting at once, the
 * new SSE stream starting from `lastSeq` as it is then, not at the end of the
 * batch. Returning effects in a list would be purer but would move that moment.
 */
import type { ClientMessage, Item, Job, ServerMessage } from '../protocol.js'
import { mergeJob } from './job-merge.js'
import { Sequencer } from './sequencer.js'

/** Every job of the user by id. */
export type JobMap = Record<string, Job>

/** What the connection hands over between two animation frames. */
export type Incoming =
  | { kind: 'message'; message: ServerMessage }
  | { kind: 'polled'; jobs: Job[]; complete: boolean }

export interface ReduceEffects {
  /** An item event of a job (for the job's item feeds). */
  item: (jobId: string, item: Item) => void
  /** "Read this job's items again" (`items_reset`). */
  itemsReset: (jobId: string) => void
  /** A gap opened: ask for everything after `since` (`epoch` is current). */
  resume: (since: number) => void
}

export interface BatchResult {
  /** The new map, or null when no entry of the batch touched the jobs. */
  jobs: JobMap | null
  /** Ids written or deleted, in order; may repeat. */
  touched: string[]
  /** A full state (hello, snapshot, complete job list) replaced the map. */
  replaced: boolean
}

const ORDERED = { ordered: true } as const

/** A map of `list` by id, each merged over the entry `previous` holds for it. */
export function replaceJobs(previous: JobMap, list: Job[], options: { truncated?: boolean } = {}): JobMap {
  const fresh: JobMap = {}
  // A cut list (the server's --snapshot-jobs) holds every unfinished job and
  // only the newest finished ones: a finished job it leaves out is older, not
  // gone, so the app keeps what it knew of it. An unfinished one left out was
  // deleted meanwhile.
  if (options.truncated) {
    for (const [id, known] of Object.entries(previous)) {
      if (known.state === 'done' || known.state === 'cancelled') fresh[id] = known
    }
  }
  for (const next of list) fresh[next.id] = mergeJob(previous[next.id], next, ORDERED)
  return fresh
}

/**
 * A job the app learned over HTTP (just created, an action's answer): it may
 * be older than the last event, so it cannot lower any count unless it is
 * the answer to "retry failed" (`requeue`).
 */
export function withJob(jobs: JobMap, next: Job, options: { requeue?: boolean } = {}): JobMap {
  const merged = mergeJob(jobs[next.id], next, { ordered: false, requeue: options.requeue })
  return { ...jobs, [next.id]: merged }
}

/** `jobs` without `id`; null when it had no such job (nothing to change). */
export function withoutJob(jobs: JobMap, id: string): JobMap | null {
  if (!(id in jobs)) return null
  const copy = { ...jobs }
  delete copy[id]
  return copy
}

/**
 * The seq position between batches (the Sequencer and the server stream it
 * belongs to) and the batch transition itself.
 */
export class LiveReducer {
  private sequencer: Sequencer
  private streamEpoch: string | null

  /** `lastSeq` -1: nothing known yet (accept whatever comes first). */
  constructor(lastSeq = -1, epoch: string | null = null) {
    this.sequencer = new Sequencer(lastSeq)
    this.streamEpoch = epoch
  }

  /** The last seq applied: where a resume starts. */
  get lastSeq(): number {
    return this.sequencer.last
  }

  /** The server stream our seq belongs to (hello's `epoch`); sent with every resume. */
  get epoch(): string | null {
    return this.streamEpoch
  }

  /** True while messages are missing between `lastSeq` and a held one. */
  get hasGap(): boolean {
    return this.sequencer.hasGap
  }

  /** The frame asking for everything after `since` in our stream (with its epoch, when known). */
  resumeFrame(since: number): ClientMessage {
    const epoch = this.streamEpoch
    return epoch ? { type: 'resume', since, epoch } : { type: 'resume', since }
  }

  /** A new connection: held messages belonged to the old one, its resume replays them. */
  resetConnection(): void {
    this.sequencer.resetConnection()
  }

  apply(jobs: JobMap, batch: Incoming[], effects: ReduceEffects): BatchResult {
    let next: JobMap | null = null
    const touched: string[] = []
    const edit = () => (next ??= { ...jobs })
    let replaced = false

    for (const entry of batch) {
      if (entry.kind === 'polled') {
        const target = edit()
        if (entry.complete) {
          next = replaceJobs(target, entry.jobs)
          replaced = true
        } else {
          for (const polledJob of entry.jobs) target[polledJob.id] = mergeJob(target[polledJob.id], polledJob, ORDERED)
        }
        touched.push(...entry.jobs.map((j) => j.id))
        continue
      }
      const message = entry.message
      if (message.type === 'items_reset') {
        effects.itemsReset(message.job)
        continue
      }
      if (message.type !== 'hello' && message.type !== 'snapshot' && message.type !== 'progress' && message.type !== 'job' && message.type !== 'item') continue
      const { ready, resumeSince } = this.sequencer.push(message)
      for (const accepted of ready) {
        switch (accepted.type) {
          case 'hello':
          case 'snapshot': {
            if (accepted.epoch) this.streamEpoch = accepted.epoch
            next = replaceJobs(edit(), accepted.jobs, { truncated: accepted.truncated })
            replaced = true
            touched.push(...accepted.jobs.map((j) => j.id))
            break
          }
          case 'progress': {
            const target = edit()
            target[accepted.job.id] = mergeJob(target[accepted.job.id], accepted.job, ORDERED)
            touched.push(accepted.job.id)
            break
          }
          case 'job': {
            const target = edit()
            if (accepted.event === 'deleted') delete target[accepted.job.id]
            else target[accepted.job.id] = mergeJob(target[accepted.job.id], accepted.job, ORDERED)
            touched.push(accepted.job.id)
            break
          }
          case 'item':
            effects.item(accepted.job, accepted.item)
            break
        }
      }
      if (resumeSince !== null) effects.resume(resumeSince)
    }

    return { jobs: next, touched, replaced }
  }
}
