/*
 * Types of the HTTP API objects and of progress protocol v1 (see docs/api.md and docs/protocol.md),
 * plus the one place that turns untrusted JSON from the server into them.
 *
 * Parsing is defensive: a frame that does not look like a message we know is
 * dropped (null), never thrown, so a server newer than this app cannot crash it.
 * Job ids are normalised to strings because routes and Map keys are strings.
 */

export type JobState = 'queued' | 'running' | 'paused' | 'done' | 'cancelled'
export type ItemState = 'queued' | 'active' | 'done' | 'failed' | 'cancelled'

/** The fixed failure vocabulary shared by CLI, API and UI. */
export const FAILURE_REASONS = [
  'bad_url',
  'dns',
  'connect',
  'tls',
  'timeout',
  'http',
  'too_large',
  'truncated',
  'too_many_redirects',
  'blocked_address',
  'not_image',
  'too_many_pixels',
  'io',
  'cancelled',
] as const
export type FailureReason = (typeof FAILURE_REASONS)[number]

export interface Counts {
  total: number
  queued: number
  active: number
  done: number
  failed: number
  cancelled: number
}

export interface Job {
  id: string
  name: string
  state: JobState
  created: string
  counts: Counts
  /** Bytes downloaded so far. */
  bytes: number
  /** Items finished per second, as the server measures it. */
  rate: number
  /** Seconds left, or null when unknown. */
  eta: number | null
}

export interface Item {
  id: string
  url: string
  state: ItemState
  reason?: string
  http_status?: number
  sha256?: string
  bytes?: number
  width?: number
  height?: number
  format?: string
  attempts: number
}

export interface HelloMessage {
  type: 'hello'
  protocol: number
  /** Names the server process and stream the seq belongs to; sent back in `resume`. */
  epoch?: string
  seq: number
  jobs: Job[]
  /** The list was cut at the server's --snapshot-jobs: every unfinished job is in it, finished ones only the newest. */
  truncated?: boolean
}
export interface SnapshotMessage {
  type: 'snapshot'
  epoch?: string
  seq: number
  jobs: Job[]
  truncated?: boolean
}
export interface ProgressMessage {
  type: 'progress'
  seq: number
  job: Job
}
export interface JobEventMessage {
  type: 'job'
  seq: number
  event: 'created' | 'deleted'
  job: Job
}
/** An item of a subscribed job. Carries the current seq but does not advance it. */
export interface ItemMessage {
  type: 'item'
  seq: number
  job: string
  item: Item
}
/** Side messages about item subscriptions; they do not advance seq either. */
export interface ItemsResetMessage {
  type: 'items_reset'
  job: string
}
export interface SubscriptionMessage {
  type: 'subscribed' | 'unsubscribed'
  job: string
}
export interface PongMessage {
  type: 'pong'
}
export interface ErrorMessage {
  type: 'error'
  code?: string
  message?: string
}

export type SequencedMessage = HelloMessage | SnapshotMessage | ProgressMessage | JobEventMessage | ItemMessage
export type ServerMessage = SequencedMessage | ItemsResetMessage | SubscriptionMessage | PongMessage | ErrorMessage

export type ClientMessage =
  | { type: 'resume'; since: number; epoch?: string }
  | { type: 'subscribe'; job: string; items: boolean }
  | { type: 'unsubscribe'; job: string }
  | { type: 'ping' }

const JOB_STATES: readonly string[] = ['queued', 'running', 'paused', 'done', 'cancelled']
const ITEM_STATES: readonly string[] = ['queued', 'active', 'done', 'failed', 'cancelled']

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

function isId(value: unknown): value is string | number {
  return (typeof value === 'string' && value.length > 0) || (typeof value === 'number' && Number.isFinite(value))
}

export function emptyCounts(): Counts {
  return { total: 0, queued: 0, active: 0, done: 0, failed: 0, cancelled: 0 }
}

/** A job object from any source (socket, HTTP); null when it lacks an id. */
export function parseJob(raw: unknown): Job | null {
  if (!isRecord(raw) || !isId(raw.id)) return null
  const counts = isRecord(raw.counts) ? raw.counts : {}
  const eta = optionalNumber(raw.eta)
  return {
    id: String(raw.id),
    name: typeof raw.name === 'string' ? raw.name : '',
    state: (typeof raw.state === 'string' && JOB_STATES.includes(raw.state) ? raw.state : 'queued') as JobState,
    created: typeof raw.created === 'string' ? raw.created : typeof raw.created === 'number' ? new Date(raw.created * 1000).toISOString() : '',
    counts: {
      total: count(counts.total),
      queued: count(counts.queued),
      active: count(counts.active),
      done: count(counts.done),
      failed: count(counts.failed),
      cancelled: count(counts.cancelled),
    },
    bytes: count(raw.bytes),
    rate: count(raw.rate),
    eta: eta !== undefined && eta >= 0 ? eta : null,
  }
}

export function parseItem(raw: unknown): Item | null {
  if (!isRecord(raw) || !isId(raw.id)) return null
  const item: Item = {
    id: String(raw.id),
    url: typeof raw.url === 'string' ? raw.url : '',
    state: (typeof raw.state === 'string' && ITEM_STATES.includes(raw.state) ? raw.state : 'queued') as ItemState,
    attempts: count(raw.attempts),
  }
  if (typeof raw.reason === 'string') item.reason = raw.reason
  if (typeof raw.sha256 === 'string' && /^[0-9a-f]{64}$/.test(raw.sha256)) item.sha256 = raw.sha256
  if (typeof raw.format === 'string') item.format = raw.format
  const httpStatus = optionalNumber(raw.http_status)
  if (httpStatus !== undefined) item.http_status = httpStatus
  const bytes = optionalNumber(raw.bytes)
  if (bytes !== undefined) item.bytes = bytes
  const width = optionalNumber(raw.width)
  if (width !== undefined) item.width = width
  const height = optionalNumber(raw.height)
  if (height !== undefined) item.height = height
  return item
}

function parseJobs(raw: unknown): Job[] | null {
  if (!Array.isArray(raw)) return null
  const jobs: Job[] = []
  for (const entry of raw) {
    const job = parseJob(entry)
    if (job) jobs.push(job)
  }
  return jobs
}

/** Validates one decoded frame. Returns null for anything we do not understand. */
export function parseServerMessage(raw: unknown): ServerMessage | null {
  if (!isRecord(raw) || typeof raw.type !== 'string') return null
  if (raw.type === 'pong') return { type: 'pong' }
  if (raw.type === 'error') {
    const error = isRecord(raw.error) ? raw.error : raw
    return {
      type: 'error',
      code: typeof error.code === 'string' ? error.code : undefined,
      message: typeof error.message === 'string' ? error.message : undefined,
    }
  }
  if (raw.type === 'items_reset' || raw.type === 'subscribed' || raw.type === 'unsubscribed') {
    return isId(raw.job) ? { type: raw.type, job: String(raw.job) } : null
  }
  const seq = raw.seq
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null
  switch (raw.type) {
    case 'hello':
    case 'snapshot': {
      const jobs = parseJobs(raw.jobs)
      if (!jobs) return null
      const epoch = typeof raw.epoch === 'string' && raw.epoch.length > 0 ? { epoch: raw.epoch } : {}
      const cut = raw.truncated === true ? { truncated: true } : {}
      return raw.type === 'hello'
        ? { type: 'hello', protocol: count(raw.protocol), ...epoch, seq, jobs, ...cut }
        : { type: 'snapshot', ...epoch, seq, jobs, ...cut }
    }
    case 'progress': {
      const job = parseJob(raw.job)
      return job ? { type: 'progress', seq, job } : null
    }
    case 'job': {
      const job = parseJob(raw.job)
      if (!job || (raw.event !== 'created' && raw.event !== 'deleted')) return null
      return { type: 'job', seq, event: raw.event, job }
    }
    case 'item': {
      const item = parseItem(raw.item)
      if (!item || !isId(raw.job)) return null
      return { type: 'item', seq, job: String(raw.job), item }
    }
    default:
      return null
  }
}

/** Decodes a text frame; null for invalid JSON or an unknown message. */
export function decodeServerFrame(text: string): ServerMessage | null {
  try {
    return parseServerMessage(JSON.parse(text))
  } catch {
    return null
  }
}

/** Items finished one way or another: what the progress bars measure. */
export function finishedCount(counts: Counts): number {
  return counts.done + counts.failed + counts.cancelled
}

/** Whole percent of the job that is finished (0–100), rounded down so 100 means all. */
export function percentFinished(job: Pick<Job, 'counts' | 'state'>): number {
  const total = job.counts.total
  if (total <= 0) return job.state === 'done' ? 100 : 0
  return Math.min(100, Math.floor((finishedCount(job.counts) * 100) / total))
}

export function isActiveJob(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running' || job.state === 'paused'
}
