/*
 * The tiny part of the live state kept in sessionStorage so a reload paints
 * the last numbers at once, before the socket opens: the last applied seq and,
 * per job, its id, name, state, counts and bytes. Nothing large: no items, no
 * URLs, at most MAX_PERSISTED_JOBS jobs (active ones first), names clipped.
 * sessionStorage is per tab, which is what we want: each tab resumes its own
 * stream. A token never goes here. Saves are throttled (ThrottledSave, below).
 */
import { emptyCounts, isActiveJob, type Job, type JobState } from '../protocol.js'

export const PERSIST_KEY = 'litchi.live.v1'
export const MAX_PERSISTED_JOBS = 50
const MAX_NAME_LENGTH = 80

/** One job as stored: [id, name, state, total, done, failed, cancelled, queued, active, bytes]. */
type PersistedJob = [string, string, JobState, number, number, number, number, number, number, number]

interface PersistedState {
  v: 1
  seq: number
  /** The server stream the seq belongs to (hello's `epoch`), when it sent one. */
  e?: string
  jobs: PersistedJob[]
}

export interface RestoredState {
  lastSeq: number
  epoch: string | null
  jobs: Job[]
}

const MAX_EPOCH_LENGTH = 128

function pickJobsToKeep(jobs: Job[]): Job[] {
  if (jobs.length <= MAX_PERSISTED_JOBS) return jobs
  // Active jobs are what a reload must paint; then the newest finished ones.
  const byNewest = [...jobs].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0))
  const active = byNewest.filter(isActiveJob)
  const rest = byNewest.filter((job) => !isActiveJob(job))
  return [...active, ...rest].slice(0, MAX_PERSISTED_JOBS)
}

export function encodeLiveState(lastSeq: number, jobs: Job[], epoch: string | null = null): string {
  const state: PersistedState = {
    v: 1,
    seq: lastSeq,
    ...(epoch && epoch.length <= MAX_EPOCH_LENGTH ? { e: epoch } : {}),
    jobs: pickJobsToKeep(jobs).map((job) => [
      job.id,
      job.name.slice(0, MAX_NAME_LENGTH),
      job.state,
      job.counts.total,
      job.counts.done,
      job.counts.failed,
      job.counts.cancelled,
      job.counts.queued,
      job.counts.active,
      job.bytes,
    ]),
  }
  return JSON.stringify(state)
}

const JOB_STATES: readonly string[] = ['queued', 'running', 'paused', 'done', 'cancelled']

export function decodeLiveState(text: string | null): RestoredState | null {
  if (!text) return null
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof raw !== 'object' || raw === null) return null
  const state = raw as Partial<PersistedState>
  if (state.v !== 1 || typeof state.seq !== 'number' || !Array.isArray(state.jobs)) return null
  const jobs: Job[] = []
  for (const entry of state.jobs) {
    if (!Array.isArray(entry) || entry.length !== 10 || typeof entry[0] !== 'string') continue
    const numbers = entry.slice(3).map((n) => (typeof n === 'number' && n >= 0 ? n : 0))
    const counts = emptyCounts()
    ;[counts.total, counts.done, counts.failed, counts.cancelled, counts.queued, counts.active] = numbers
    jobs.push({
      id: entry[0],
      name: typeof entry[1] === 'string' ? entry[1] : '',
      state: (JOB_STATES.includes(entry[2]) ? entry[2] : 'queued') as JobState,
      created: '',
      counts,
      bytes: numbers[6],
      rate: 0,
      eta: null,
    })
  }
  const epoch = typeof state.e === 'string' && state.e.length <= MAX_EPOCH_LENGTH ? state.e : null
  return { lastSeq: state.seq, epoch, jobs }
}

export interface KeyValueStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

export function sessionStore(): KeyValueStorage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage
  } catch {
    return null // storage disabled by the browser's privacy settings
  }
}

export function saveLiveState(
  storage: KeyValueStorage | null,
  lastSeq: number,
  jobs: Job[],
  epoch: string | null = null,
): void {
  if (!storage) return
  try {
    storage.setItem(PERSIST_KEY, encodeLiveState(lastSeq, jobs, epoch))
  } catch {
    // Quota or privacy mode: the app works without the fast repaint.
  }
}

export function loadLiveState(storage: KeyValueStorage | null): RestoredState | null {
  if (!storage) return null
  try {
    return decodeLiveState(storage.getItem(PERSIST_KEY))
  } catch {
    return null
  }
}

export function clearLiveState(storage: KeyValueStorage | null): void {
  try {
    storage?.removeItem(PERSIST_KEY)
  } catch {
    // Nothing to clear.
  }
}

/** How long changes gather before one save. */
export const PERSIST_THROTTLE_MS = 500

/**
 * Throttles the saves: the first change starts a timer, later ones ride on
 * it, and it saves once when it fires. Saving after every applied batch
 * would serialise the state up to once per animation frame for a copy only
 * a reload reads; the price is that the copy may be up to
 * PERSIST_THROTTLE_MS old, which `pagehide` (saveNow) and the resume after
 * the reload make up for.
 */
export class ThrottledSave {
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly save: () => void,
    private readonly delayMs = PERSIST_THROTTLE_MS,
  ) {}

  /** True while a save is scheduled. */
  get pending(): boolean {
    return this.timer !== null
  }

  /** Saves within `delayMs` unless a save is already scheduled. */
  schedule(): void {
    if (this.timer !== null) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.saveNow()
    }, this.delayMs)
  }

  /** Saves at once; a scheduled save is no longer needed. */
  saveNow(): void {
    this.cancel()
    this.save()
  }

  /** Forgets a scheduled save without saving. */
  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }
}
