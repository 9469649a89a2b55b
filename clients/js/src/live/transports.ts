/*
 * The three ways the app hears about progress, behind one small interface so
 * the connection can fall back from one to the next without LiveJobs caring:
 *
 *  - WebSocket `/api/ws` (preferred): cookie auth, or the subprotocols
 *    `litchi.v1, bearer.TOKEN` when the app holds a token; two-way.
 *  - Server-Sent Events `/api/events`: the same messages, one-way. A new
 *    EventSource cannot set Last-Event-ID, so the resume point goes in
 *    `?since=`; the browser's own reconnects send Last-Event-ID as usual.
 *  - Polling `GET /api/jobs` + `GET /api/jobs/{id}/progress`: no seq, the
 *    state merges what it reads without letting a count go backwards.
 *
 * A transport reports open, messages and one close; it never reconnects by
 * itself (the connection decides when and with what).
 */
import { decodeServerFrame, type ClientMessage, type Job, type ServerMessage } from '../protocol.js'

export type TransportKind = 'ws' | 'sse' | 'poll'

export interface CloseInfo {
  /** Whether the transport ever opened (a failure to connect is not a drop). */
  opened: boolean
  /** WebSocket close code, when there was one. */
  code?: number
  /** The server refused our credentials (polling sees the 401). */
  unauthorized?: boolean
}

export interface TransportHandlers {
  open: () => void
  message: (message: ServerMessage) => void
  /** Polling only: jobs read over HTTP; `complete` when it was the whole list. */
  polled: (jobs: Job[], complete: boolean) => void
  close: (info: CloseInfo) => void
}

export interface Transport {
  readonly kind: TransportKind
  /** False when the message could not be sent (not open, or one-way transport). */
  send: (message: ClientMessage) => boolean
  /** Closes without reporting `close` to the handlers. */
  close: () => void
}

/** The parts of the WebSocket API we use, so tests can pass a fake. */
export interface WebSocketLike {
  readonly readyState: number
  readonly protocol: string
  onopen: ((event: Event) => void) | null
  onmessage: ((event: MessageEvent) => void) | null
  onclose: ((event: CloseEvent) => void) | null
  onerror: ((event: Event) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}
export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike

export interface EventSourceLike {
  readonly readyState: number
  onopen: ((event: Event) => void) | null
  onerror: ((event: Event) => void) | null
  addEventListener(type: string, listener: (event: MessageEvent) => void): void
  close(): void
}
export type EventSourceFactory = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike

const WS_OPEN = 1
export const WS_PROTOCOL = 'litchi.v1'
/** Event names the server may use on SSE (`event:` field); plain `message` too. */
const SSE_EVENT_NAMES = ['message', 'hello', 'snapshot', 'progress', 'job', 'item', 'error']

/**
 * The socket's URL: on the page's own host, or on `baseUrl`'s when it names a
 * server (`https://host` → `wss://host/api/ws`); a path-only `baseUrl`
 * (`/litchi`, behind a proxy) stays on the page's host under that path.
 */
export function webSocketUrl(location: { protocol: string; host: string }, baseUrl = ''): string {
  const absolute = /^(https?):\/\/(.*)$/i.exec(baseUrl)
  if (absolute) return `${absolute[1].toLowerCase() === 'https' ? 'wss' : 'ws'}://${absolute[2]}/api/ws`
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${baseUrl}/api/ws`
}

export function webSocketProtocols(token: string | null): string[] {
  return token ? [WS_PROTOCOL, `bearer.${token}`] : [WS_PROTOCOL]
}

export function openWebSocket(
  Factory: WebSocketFactory,
  url: string,
  token: string | null,
  handlers: TransportHandlers,
): Transport {
  let opened = false
  let finished = false
  const socket = new Factory(url, webSocketProtocols(token))
  socket.onopen = () => {
    opened = true
    handlers.open()
  }
  socket.onmessage = (event) => {
    if (finished || typeof event.data !== 'string') return
    const message = decodeServerFrame(event.data)
    if (message) handlers.message(message)
  }
  socket.onclose = (event) => {
    if (finished) return
    finished = true
    handlers.close({ opened, code: event.code })
  }
  // An error is always followed by close; close carries what we need.
  socket.onerror = () => {}
  return {
    kind: 'ws',
    send(message) {
      if (finished || socket.readyState !== WS_OPEN) return false
      socket.send(JSON.stringify(message))
      return true
    },
    close() {
      if (finished) return
      finished = true
      socket.onopen = socket.onmessage = socket.onerror = null
      socket.onclose = null
      try {
        socket.close(1000, 'bye')
      } catch {
        // Already closing.
      }
    },
  }
}

export function openEventSource(
  Factory: EventSourceFactory,
  since: number,
  handlers: TransportHandlers,
  baseUrl = '',
): Transport {
  let opened = false
  let finished = false
  const url = since >= 0 ? `${baseUrl}/api/events?since=${since}` : `${baseUrl}/api/events`
  const source = new Factory(url, { withCredentials: true })
  const finish = () => {
    if (finished) return
    finished = true
    source.close()
    handlers.close({ opened })
  }
  source.onopen = () => {
    if (finished) return
    opened = true
    handlers.open()
  }
  const onEvent = (event: MessageEvent) => {
    if (finished || typeof event.data !== 'string') return
    const message = decodeServerFrame(event.data)
    if (message) handlers.message(message)
  }
  for (const name of SSE_EVENT_NAMES) source.addEventListener(name, onEvent)
  // We do our own reconnects (with backoff, resume point and fallback), so
  // any error ends this EventSource rather than letting it retry on its own.
  source.onerror = finish
  return {
    kind: 'sse',
    send: () => false,
    close() {
      if (finished) return
      finished = true
      source.onopen = source.onerror = null
      source.close()
    },
  }
}

export interface PollApi {
  listJobs: (signal?: AbortSignal) => Promise<Job[]>
  getProgress: (id: string, signal?: AbortSignal) => Promise<Job>
  isUnauthorized: (error: unknown) => boolean
  /** A 404 for one job: it was deleted; the next full list drops it. */
  isGone: (error: unknown) => boolean
}

export interface PollOptions {
  intervalMs: number
  /** Every this many ticks the whole list is read again (new and deleted jobs). */
  fullListEvery: number
  /** Jobs whose progress is worth asking about each tick. */
  activeJobIds: () => string[]
}

/**
 * Polls one request at a time (never two in flight), so answers arrive in the
 * order they were asked and a slow server is never piled on.
 */
export function startPolling(api: PollApi, options: PollOptions, handlers: TransportHandlers): Transport {
  let opened = false
  let finished = false
  let tick = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  const abort = new AbortController()

  const fail = (error: unknown) => {
    if (finished) return
    finished = true
    if (timer !== null) clearTimeout(timer)
    handlers.close({ opened, unauthorized: api.isUnauthorized(error) })
  }

  const runTick = async () => {
    timer = null
    try {
      if (!opened || tick % options.fullListEvery === 0) {
        const jobs = await api.listJobs(abort.signal)
        if (finished) return
        if (!opened) {
          opened = true
          handlers.open()
        }
        handlers.polled(jobs, true)
      } else {
        for (const id of options.activeJobIds()) {
          let job: Job
          try {
            job = await api.getProgress(id, abort.signal)
          } catch (error) {
            if (api.isGone(error)) continue
            throw error
          }
          if (finished) return
          handlers.polled([job], false)
        }
      }
      tick++
      if (!finished) timer = setTimeout(runTick, options.intervalMs)
    } catch (error) {
      fail(error)
    }
  }
  timer = setTimeout(runTick, 0)

  return {
    kind: 'poll',
    send: () => false,
    close() {
      if (finished) return
      finished = true
      if (timer !== null) clearTimeout(timer)
      abort.abort()
    },
  }
}
