/*
 * The HTTP API client (docs/api.md). Every request goes same-origin
 * with the session cookie; when the app holds a bearer token (the one-time
 * login link when the server did not swap it for a cookie) it is added as an
 * Authorization header. A 401 anywhere tells the session store, which sends the
 * user to /login. Errors become ApiError values carrying the server's code.
 */
import { parseItem, parseJob, type Item, type Job } from './protocol'
import type { JobRequestFields } from './request-options'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

interface AuthHooks {
  /** The bearer token to send, or null to rely on the cookie. */
  token: () => string | null
  /** Called once per 401 response. */
  onUnauthorized: () => void
}

let hooks: AuthHooks = { token: () => null, onUnauthorized: () => {} }

export function configureAuth(next: AuthHooks): void {
  hooks = next
}

export function bearerToken(): string | null {
  return hooks.token()
}

interface RequestOptions {
  method?: string
  body?: unknown
  /** Send this token instead of the configured one (validating a login link). */
  token?: string
  /** Do not report a 401 to the session (the login form handles its own). */
  quiet401?: boolean
  signal?: AbortSignal
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`
  let message = response.statusText || `HTTP ${response.status}`
  try {
    const body: unknown = await response.json()
    if (typeof body === 'object' && body !== null && 'error' in body) {
      const error = (body as { error: { code?: unknown; message?: unknown } }).error
      if (typeof error?.code === 'string') code = error.code
      if (typeof error?.message === 'string') message = error.message
    }
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  return new ApiError(response.status, code, message)
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const token = options.token ?? hooks.token()
  if (token) headers.Authorization = `Bearer ${token}`
  let body: BodyInit | undefined
  if (typeof options.body === 'string') {
    headers['Content-Type'] = 'text/plain; charset=utf-8'
    body = options.body
  } else if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  let response: Response
  try {
    response = await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: options.signal,
    })
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause
    throw new ApiError(0, 'network', 'The server cannot be reached.')
  }
  if (!response.ok) {
    if (response.status === 401 && !options.quiet401) hooks.onUnauthorized()
    throw await errorFrom(response)
  }
  return response
}

async function requestJson(path: string, options: RequestOptions = {}): Promise<unknown> {
  const response = await request(path, options)
  if (response.status === 204) return null
  try {
    return await response.json()
  } catch {
    throw new ApiError(response.status, 'bad_response', 'The server sent a response that is not JSON.')
  }
}

function jobOrThrow(raw: unknown): Job {
  const job = parseJob(raw)
  if (!job) throw new ApiError(200, 'bad_response', 'The server sent a job without an id.')
  return job
}

const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`

/** POST /api/login; the server sets the HttpOnly session cookie. */
export async function login(username: string, password: string): Promise<void> {
  await requestJson('/api/login', { method: 'POST', body: { username, password }, quiet401: true })
}

/**
 * Swaps a one-time login-link token for the session cookie:
 * POST /api/login {"token"}. Returns false when the server does not accept
 * that form (so the caller keeps the token as a bearer token instead).
 */
export async function loginWithToken(token: string): Promise<boolean> {
  try {
    await requestJson('/api/login', { method: 'POST', body: { token }, quiet401: true })
    return true
  } catch (error) {
    if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false
    throw error
  }
}

export async function logout(): Promise<void> {
  await request('/api/logout', { method: 'POST', quiet401: true })
}

/**
 * Whether the current credentials (cookie, or `token` when given) are accepted:
 * 'ok', 'unauthorized', or 'unreachable' when the server does not answer.
 */
export async function checkAuth(token?: string): Promise<'ok' | 'unauthorized' | 'unreachable'> {
  try {
    await request('/api/jobs', { token, quiet401: true })
    return 'ok'
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return 'unauthorized'
    return 'unreachable'
  }
}

export async function listJobs(signal?: AbortSignal): Promise<Job[]> {
  const body = (await requestJson('/api/jobs', { signal })) as { jobs?: unknown }
  if (!Array.isArray(body?.jobs)) throw new ApiError(200, 'bad_response', 'The job list is missing.')
  return body.jobs.map(parseJob).filter((job): job is Job => job !== null)
}

export async function getJob(id: string): Promise<Job> {
  return jobOrThrow(await requestJson(jobPath(id)))
}

/** GET /api/jobs/{id}/progress: a progress message or a bare job. */
export async function getProgress(id: string, signal?: AbortSignal): Promise<Job> {
  const body = (await requestJson(`${jobPath(id)}/progress`, { signal })) as { job?: unknown }
  return jobOrThrow(typeof body === 'object' && body !== null && 'job' in body ? body.job : body)
}

export async function createJob(urls: string[], name?: string, extra: JobRequestFields = {}): Promise<Job> {
  const body: { urls: string[]; name?: string } & JobRequestFields = { ...extra, urls }
  if (name) body.name = name
  return jobOrThrow(await requestJson('/api/jobs', { method: 'POST', body }))
}

export type JobAction = 'pause' | 'resume' | 'cancel' | 'retry'

/** A state change; returns the job when the server answers with it. */
export async function jobAction(id: string, action: JobAction): Promise<Job | null> {
  const body = await requestJson(`${jobPath(id)}/${action}`, { method: 'POST' })
  return parseJob(body)
}

export async function deleteJob(id: string): Promise<void> {
  await request(jobPath(id), { method: 'DELETE' })
}

export interface ItemPage {
  items: Item[]
  next: string | null
}

export async function listItems(
  id: string,
  query: { state?: string; after?: string; limit?: number },
  signal?: AbortSignal,
): Promise<ItemPage> {
  const params = new URLSearchParams()
  if (query.state) params.set('state', query.state)
  if (query.after) params.set('after', query.after)
  if (query.limit) params.set('limit', String(query.limit))
  const body = (await requestJson(`${jobPath(id)}/items?${params}`, { signal })) as {
    items?: unknown
    next?: unknown
  }
  const items = Array.isArray(body?.items) ? body.items.map(parseItem).filter((i): i is Item => i !== null) : []
  const next = typeof body?.next === 'string' || typeof body?.next === 'number' ? String(body.next) : null
  return { items, next }
}

export const imageUrl = (sha256: string, thumb?: number) =>
  `/api/images/${sha256}${thumb ? `?thumb=${thumb}` : ''}`
export const manifestUrl = (id: string) => `${jobPath(id)}/manifest.jsonl`
export const archiveUrl = (id: string) => `${jobPath(id)}/archive.zip`

/**
 * An object URL for a protected resource fetched with the bearer token; used
 * only in token mode, where <img> and <a download> cannot send the header.
 */
export async function fetchObjectUrl(path: string, signal?: AbortSignal): Promise<string> {
  const response = await request(path, { signal })
  return URL.createObjectURL(await response.blob())
}
