/*
 * What a job's page and card show besides the raw counts, derived in one
 * place so the bar, the big percent, the title and the card agree:
 *
 * - percent: a cancelled job shows how much was processed (done + failed),
 *   never 100 % while some of it was cancelled;
 * - rate and ETA: the server's (`rate`, `eta`), the one estimator, measured
 *   over the job's running time only; bytes/s follows from that rate and the
 *   average size of the images done so far, so no second estimator runs here;
 * - a finished job: duration, finish time and average rate over the run, and
 *   "Done with N failed" instead of a plain green Done.
 */
import { finishedCount, percentFinished, type Job } from '@/api/protocol'

export type Outcome = 'queued' | 'running' | 'paused' | 'done' | 'done-with-failures' | 'cancelled'

/** Whole percent shown for a job (0–100); a cancelled job with cancelled items stays below 100. */
export function shownPercent(job: Pick<Job, 'counts' | 'state'>): number {
  const { counts } = job
  if (job.state !== 'cancelled' || counts.total <= 0) return percentFinished(job)
  const processed = counts.done + counts.failed
  const percent = Math.floor((processed * 100) / counts.total)
  return counts.cancelled > 0 ? Math.min(99, percent) : percent
}

/** Items not finished in any way yet (queued or active). */
export function leftCount(job: Pick<Job, 'counts'>): number {
  return Math.max(0, job.counts.total - finishedCount(job.counts))
}

export function outcomeOf(job: Pick<Job, 'counts' | 'state'>): Outcome {
  if (job.state === 'done') return job.counts.failed > 0 ? 'done-with-failures' : 'done'
  return job.state
}

/** The badge's words: "running", "Done with 3 failed", "cancelled". */
export function outcomeText(job: Pick<Job, 'counts' | 'state'>): string {
  const outcome = outcomeOf(job)
  if (outcome === 'done-with-failures') return `done with ${job.counts.failed.toLocaleString('en-US')} failed`
  return outcome
}

export interface LiveFigures {
  /** Items finished per second (the server's estimate); null when the job is not running. */
  itemsPerSecond: number | null
  /** Bytes per second at that rate and the average image size so far. */
  bytesPerSecond: number | null
  /** Seconds left (the server's estimate); null when unknown. */
  etaSeconds: number | null
}

export function liveFigures(job: Pick<Job, 'counts' | 'state' | 'bytes' | 'rate' | 'eta'>): LiveFigures {
  if (job.state !== 'running') return { itemsPerSecond: null, bytesPerSecond: null, etaSeconds: null }
  const rate = job.rate
  const averageBytes = job.counts.done > 0 ? job.bytes / job.counts.done : 0
  return {
    itemsPerSecond: rate,
    bytesPerSecond: averageBytes > 0 ? rate * averageBytes : null,
    etaSeconds: rate > 0 ? job.eta : null,
  }
}

export interface FinishedFigures {
  durationSeconds: number
  /** Items finished (done or failed) per second over the whole run. */
  itemsPerSecond: number
  bytesPerSecond: number
}

/** Duration and averages of a finished job from its `created` and `finished` times; null when unknown. */
export function finishedFigures(job: Pick<Job, 'counts' | 'bytes' | 'created'>, finished: string | null): FinishedFigures | null {
  if (!finished || !job.created) return null
  const start = Date.parse(job.created)
  const end = Date.parse(finished)
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return null
  const durationSeconds = (end - start) / 1000
  const processed = job.counts.done + job.counts.failed
  return {
    durationSeconds,
    itemsPerSecond: durationSeconds > 0 ? processed / durationSeconds : 0,
    bytesPerSecond: durationSeconds > 0 ? job.bytes / durationSeconds : 0,
  }
}

/** The tab title: progress only names a job ("(42%) Cats · Litchi"); other pages say where you are. */
export function tabTitle(page: string | null, job: Pick<Job, 'counts' | 'state' | 'name' | 'id'> | null): string {
  if (job) return `(${shownPercent(job)}%) ${job.name || `Job ${job.id}`} · Litchi`
  return page ? `${page} · Litchi` : 'Litchi'
}
