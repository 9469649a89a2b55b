/*
 * Items per second, bytes per second and time left for each running job, as
 * the job page and cards show them.
 *
 * Progress messages come as fast as the server sends them (many per second
 * while a job runs, none while it is quiet), so a rate taken between two
 * messages jumps around. Instead each job keeps one sample, and a new rate is
 * measured only once RATE_WINDOW_MS has passed since it, then smoothed
 * (exponential moving average, RATE_SMOOTHING of the new value): steady
 * numbers at the cost of following a real change over a few seconds. The
 * server's own `rate` and `eta`, when it sends them, win over ours.
 *
 * The clock is injected so tests can step it; nothing here is reactive, the
 * caller (LiveJobs) decides when to assign the result.
 */
import { finishedCount, type Job } from '../protocol.js'

export interface JobSpeed {
  itemsPerSecond: number
  bytesPerSecond: number
  /** Seconds left: the server's estimate, else ours; null when unknown. */
  etaSeconds: number | null
}

/** Rates are measured over at least this long, then smoothed. */
export const RATE_WINDOW_MS = 1_000
/** The weight of a new measurement against the rate shown so far. */
export const RATE_SMOOTHING = 0.3

/** What a job shows before anything was measured. */
export function noSpeed(): JobSpeed {
  return { itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: null }
}

interface RateSample {
  at: number
  bytes: number
  finished: number
}

export class SpeedEstimator {
  private readonly samples = new Map<string, RateSample>()

  constructor(private readonly now: () => number = () => Date.now()) {}

  /**
   * The speed of `job` at `at`, given the one shown now (`previous`); null
   * while the window since the last sample has not passed (keep showing
   * `previous`). The first sighting of a running job only takes a sample and
   * shows `previous`, else the server's numbers; whatever is shown is what
   * the first measurement is smoothed from. A job that is not running shows
   * no rate, and 0 s left once nothing is left.
   */
  measure(job: Job, previous: JobSpeed | undefined, at: number = this.now()): JobSpeed | null {
    const finished = finishedCount(job.counts)
    const left = Math.max(0, job.counts.total - finished)
    if (job.state !== 'running') {
      this.samples.delete(job.id)
      return { itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: left === 0 ? 0 : null }
    }
    const sample = this.samples.get(job.id)
    if (!sample) {
      this.samples.set(job.id, { at, bytes: job.bytes, finished })
      return previous ?? { itemsPerSecond: job.rate, bytesPerSecond: 0, etaSeconds: job.eta }
    }
    const elapsed = at - sample.at
    if (elapsed < RATE_WINDOW_MS) return null
    const itemsNow = Math.max(0, (finished - sample.finished) / (elapsed / 1000))
    const bytesNow = Math.max(0, (job.bytes - sample.bytes) / (elapsed / 1000))
    this.samples.set(job.id, { at, bytes: job.bytes, finished })
    const smooth = (old: number | undefined, fresh: number) =>
      old === undefined ? fresh : old + RATE_SMOOTHING * (fresh - old)
    const itemsPerSecond = job.rate > 0 ? job.rate : smooth(previous?.itemsPerSecond, itemsNow)
    const bytesPerSecond = smooth(previous?.bytesPerSecond, bytesNow)
    const etaSeconds = job.eta ?? (itemsPerSecond > 0 ? left / itemsPerSecond : null)
    return { itemsPerSecond, bytesPerSecond, etaSeconds }
  }

  /**
   * The speeds after the `touched` jobs of `jobs` changed: a new map, or null
   * when none changed. Jobs no longer in `jobs` lose their speed; their sample
   * goes only when they are among `touched` (a delete event), so a job a
   * snapshot left out keeps its three numbers until sign-out.
   */
  update(
    speeds: Record<string, JobSpeed>,
    jobs: Record<string, Job>,
    touched: Iterable<string>,
  ): Record<string, JobSpeed> | null {
    const at = this.now()
    let copy: Record<string, JobSpeed> | null = null
    for (const id of new Set(touched)) {
      const job = jobs[id]
      if (!job) {
        this.samples.delete(id)
        continue
      }
      const measured = this.measure(job, speeds[id], at)
      if (measured) (copy ??= { ...speeds })[id] = measured
    }
    for (const id of Object.keys(speeds)) {
      if (jobs[id]) continue
      copy ??= { ...speeds }
      delete copy[id]
    }
    return copy
  }

  /** Drops the sample of one job (it was removed). */
  forget(id: string): void {
    this.samples.delete(id)
  }

  /** Drops every sample (sign-out). */
  clear(): void {
    this.samples.clear()
  }
}
