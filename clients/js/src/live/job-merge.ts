/*
 * How a newer view of a job replaces the one on screen without any count going
 * backwards. In-order socket messages are already monotonic; this guards the
 * sources that are not ordered by seq (polling, an HTTP action's answer, the
 * sessionStorage copy painted at reload) and a server that restarted with a
 * job's counts read back from its database.
 *
 * `total`, `done` and `cancelled` never legitimately shrink for one job id,
 * so they are clamped whatever the source. `failed` shrinks when failed items
 * are requeued ("retry failed"): an ordered source (seq-ordered messages, the
 * one-at-a-time poll) is trusted with that; an unordered one (a single HTTP
 * answer that may have been read before the last event) is not, unless the
 * caller knows it is the answer to a retry.
 */
import type { Counts, Job } from '../protocol.js'

export interface MergeOptions {
  /** The source delivers views of this job in order (seq, sequential polls). */
  ordered: boolean
  /** This view is the answer to "retry failed": failed may go down. */
  requeue?: boolean
}

export function mergeCounts(previous: Counts, next: Counts, options: MergeOptions): Counts {
  const total = Math.max(previous.total, next.total)
  const done = Math.max(previous.done, next.done)
  const cancelled = Math.max(previous.cancelled, next.cancelled)
  const failed = options.ordered || options.requeue ? next.failed : Math.max(previous.failed, next.failed)
  // Keep the parts consistent with the total: whatever is not finished is left.
  const left = Math.max(0, total - done - failed - cancelled)
  const active = Math.min(next.active, left)
  const queued = Math.min(next.queued, left - active)
  return { total, queued, active, done, failed, cancelled }
}

/** The newer job with counts merged so none goes backwards. */
export function mergeJob(previous: Job | undefined, next: Job, options: MergeOptions): Job {
  if (!previous || previous.id !== next.id) return next
  const counts = mergeCounts(previous.counts, next.counts, options)
  return {
    ...next,
    name: next.name || previous.name,
    created: next.created || previous.created,
    counts,
    bytes: Math.max(previous.bytes, next.bytes),
  }
}
