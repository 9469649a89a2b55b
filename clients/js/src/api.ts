/*
 * The HTTP API client (docs/api.md). Requests go to `baseUrl` (default: the
 * page's own origin) with the session cookie; when a token is configured it
 * is sent as `Authorization: Bearer`, which the server judges alone. A 401
 * anywhere calls `onUnauthorized` once per answer (the web app signs out).
 * Errors become ApiError values carrying the server's code, never a raw
 * Response or a thrown string.
 *
 * `fetch` is looked up on every call (not captured at construction), so a
 * test that stubs the global, or a polyfill installed later, is used.
 */
import { parseItem, parseJob, type Item, type Job } from './protocol.js'

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

/** Where the token comes from: a fixed string, or asked on every request (it may change). */
export type TokenSource = string | null | undefined | (() => string | null | undefined)

export interface ApiOptions {
  /** The server, e.g. `https://litchi.example`; '' (default) = the page's own origin. */
  baseUrl?: string
  /** A bearer token (`litchi token create`, or `token` from login); none = rely on the cookie. */
  token?: TokenSource
  /** Called once per 401 answer (not for the login calls, which report their own). */
  onUnauthorized?: () => void
  /** Another fetch (Node without a global one, a test). */
  fetch?: typeof fetch
}

export interface RequestOptions {
  method?: string
  body?: unknown
  /** Send this token instead of the configured one (validating a login link). */
  token?: string
  /** Do not report a 401 to `onUnauthorized` (the login form handles its own). */
  quiet401?: boolean
  signal?: AbortSignal
}

/** The body of POST /api/jobs: the URLs, a name, and any other field the server takes. */
export interface NewJob {
  urls: string[]
  name?: string
  [field: string]: unknown
}

export type JobAction = 'pause' | 'resume' | 'cancel' | 'retry'

export interface ItemPage {
  items: Item[]
  next: string | null
}

export interface ItemQuery {
  state?: string
  after?: string
  limit?: number
}

export type AuthVerdict = 'ok' | 'unauthorized' | 'unreachable'

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

function jobOrThrow(raw: unknown): Job {
  const job = parseJob(raw)
  if (!job) throw new ApiError(200, 'bad_response', 'The server sent a job without an id.')
  return job
}

const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`

/** '' stays '' (same origin); anything else loses its trailing slashes. */
export function normaliseBaseUrl(baseUrl: string | undefined): string {
  return (baseUrl ?? '').replace(/\/+$/, '')
}

export class LitchiApi {
  /** The server's URL without a trailing slash; '' for the page's own origin. */
  readonly baseUrl: string
  private tokenSource: TokenSource
  private unauthorizedHook: () => void
  private readonly fetchOverride: typeof fetch | undefined

  constructor(options: ApiOptions = {}) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl)
    this.tokenSource = options.token
    this.unauthorizedHook = options.onUnauthorized ?? (() => {})
    this.fetchOverride = options.fetch
  }

  /** The bearer token sent now, or null when the cookie authenticates. */
  token(): string | null {
    const source = this.tokenSource
    const value = typeof source === 'function' ? source() : source
    return value ? value : null
  }

  /** Replaces the token (or the function asked for it) and the 401 hook. */
  configureAuth(auth: { token?: TokenSource; onUnauthorized?: () => void }): void {
    if ('token' in auth) this.tokenSource = auth.token
    if (auth.onUnauthorized) this.unauthorizedHook = auth.onUnauthorized
  }

  /** An absolute (or same-origin) URL of an API path. */
  url(path: string): string {
    return `${this.baseUrl}${path}`
  }

  async request(path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' }
    const token = options.token ?? this.token()
    if (token) headers.Authorization = `Bearer ${token}`
    let body: string | undefined
    if (typeof options.body === 'string') {
      headers['Content-Type'] = 'text/plain; charset=utf-8'
      body = options.body
    } else if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(options.body)
    }
    const fetchNow = this.fetchOverride ?? globalThis.fetch
    let response: Response
    try {
      response = await fetchNow(this.url(path), {
        method: options.method ?? 'GET',
        headers,
        body,
        // Same origin: the cookie goes along; another origin gets none (use a token).
        credentials: 'same-origin',
        cache: 'no-store',
        signal: options.signal,
      })
    } catch (cause) {
      if ((cause as { name?: unknown } | null)?.name === 'AbortError') throw cause
      throw new ApiError(0, 'network', 'The server cannot be reached.')
    }
    if (!response.ok) {
      if (response.status === 401 && !options.quiet401) this.unauthorizedHook()
      throw await errorFrom(response)
    }
    return response
  }

  async requestJson(path: string, options: RequestOptions = {}): Promise<unknown> {
    const response = await this.request(path, options)
    if (response.status === 204) return null
    try {
      return await response.json()
    } catch {
      throw new ApiError(response.status, 'bad_response', 'The server sent a response that is not JSON.')
    }
  }

  // --- sign-in ---------------------------------------------------------------

  /**
   * POST /api/login with a name and password. The server sets the HttpOnly
   * session cookie (same origin) and answers the session token, returned
   * here for clients that cannot use the cookie (another origin, Node).
   */
  async login(username: string, password: string): Promise<{ token: string | null; user: string }> {
    const body = (await this.requestJson('/api/login', {
      method: 'POST',
      body: { username, password },
      quiet401: true,
    })) as { token?: unknown; user?: unknown } | null
    return {
      token: typeof body?.token === 'string' ? body.token : null,
      user: typeof body?.user === 'string' ? body.user : username,
    }
  }

  /**
   * Swaps a token (the one-time login link's) for the session cookie:
   * POST /api/login {"token"}. False when the server does not take it
   * (so the caller keeps the token as a bearer token instead).
   */
  async loginWithToken(token: string): Promise<boolean> {
    try {
      await this.requestJson('/api/login', { method: 'POST', body: { token }, quiet401: true })
      return true
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false
      throw error
    }
  }

  /** POST /api/logout: revokes the token the request carried and clears the cookie. */
  async logout(): Promise<void> {
    await this.request('/api/logout', { method: 'POST', quiet401: true })
  }

  /** Whether the current credentials (or `token`) are accepted, or the server does not answer. */
  async checkAuth(token?: string): Promise<AuthVerdict> {
    try {
      await this.request('/api/jobs', { token, quiet401: true })
      return 'ok'
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return 'unauthorized'
      return 'unreachable'
    }
  }

  // --- jobs ------------------------------------------------------------------

  async listJobs(signal?: AbortSignal): Promise<Job[]> {
    const body = (await this.requestJson('/api/jobs', { signal })) as { jobs?: unknown } | null
    if (!Array.isArray(body?.jobs)) throw new ApiError(200, 'bad_response', 'The job list is missing.')
    return body.jobs.map(parseJob).filter((job): job is Job => job !== null)
  }

  async getJob(id: string, signal?: AbortSignal): Promise<Job> {
    return jobOrThrow(await this.requestJson(jobPath(id), { signal }))
  }

  /** GET /api/jobs/{id}/progress: a progress message or a bare job. */
  async getProgress(id: string, signal?: AbortSignal): Promise<Job> {
    const body = (await this.requestJson(`${jobPath(id)}/progress`, { signal })) as { job?: unknown }
    return jobOrThrow(typeof body === 'object' && body !== null && 'job' in body ? body.job : body)
  }

  /** POST /api/jobs; fields beyond `urls` and `name` go to the server as given. */
  async createJob(job: NewJob): Promise<Job> {
    const body: NewJob = { ...job }
    if (!body.name) delete body.name
    return jobOrThrow(await this.requestJson('/api/jobs', { method: 'POST', body }))
  }

  /** A state change; returns the job when the server answers with it. */
  async jobAction(id: string, action: JobAction): Promise<Job | null> {
    return parseJob(await this.requestJson(`${jobPath(id)}/${action}`, { method: 'POST' }))
  }

  async deleteJob(id: string): Promise<void> {
    await this.request(jobPath(id), { method: 'DELETE' })
  }

  async listItems(id: string, query: ItemQuery = {}, signal?: AbortSignal): Promise<ItemPage> {
    const params = new URLSearchParams()
    if (query.state) params.set('state', query.state)
    if (query.after) params.set('after', query.after)
    if (query.limit) params.set('limit', String(query.limit))
    const body = (await this.requestJson(`${jobPath(id)}/items?${params}`, { signal })) as {
      items?: unknown
      next?: unknown
    } | null
    const items = Array.isArray(body?.items) ? body.items.map(parseItem).filter((i): i is Item => i !== null) : []
    const next = typeof body?.next === 'string' || typeof body?.next === 'number' ? String(body.next) : null
    return { items, next }
  }

  // --- files -----------------------------------------------------------------

  imageUrl(sha256: string, thumb?: number): string {
    return this.url(`/api/images/${sha256}${thumb ? `?thumb=${thumb}` : ''}`)
  }

  manifestUrl(id: string): string {
    return this.url(`${jobPath(id)}/manifest.jsonl`)
  }

  archiveUrl(id: string): string {
    return this.url(`${jobPath(id)}/archive.zip`)
  }

  /**
   * An object URL for a protected resource fetched with the bearer token:
   * <img> and <a download> cannot send the header. The caller revokes it.
   */
  async fetchObjectUrl(pathOrUrl: string, signal?: AbortSignal): Promise<string> {
    const path = this.baseUrl && pathOrUrl.startsWith(this.baseUrl) ? pathOrUrl.slice(this.baseUrl.length) : pathOrUrl
    const response = await this.request(path, { signal })
    return URL.createObjectURL(await response.blob())
  }
}
