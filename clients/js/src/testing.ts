/*
 * Test doubles for code built on the live state (litchi-client/testing): a
 * WebSocket and an EventSource the test drives by hand, a polling API, a
 * frame clock whose frames run on demand, an in-memory sessionStorage, and
 * a job maker. Hand `makeEnvironment()` and a ManualFrameClock to
 * `LiveJobs.start({ environment, clock })` and play the server's part:
 *
 *   FakeWebSocket.latest().serverOpen()
 *   FakeWebSocket.latest().serverSend({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 0)] })
 *   clock.runFrame()
 *
 * No test framework is needed; the package's own Vitest tests use these.
 */
import type { Job, JobState } from './protocol.js'
import type { LiveConnectionEnvironment } from './live/connection.js'
import type { FrameClock } from './live/frame-batcher.js'
import type { KeyValueStorage } from './live/persist.js'
import type { EventSourceLike, WebSocketLike } from './live/transports.js'

export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = []
  static latest(): FakeWebSocket {
    const socket = FakeWebSocket.instances.at(-1)
    if (!socket) throw new Error('no WebSocket was opened')
    return socket
  }

  readyState = 0
  protocol = ''
  onopen: ((event: Event) => void) | null = null
  onmessage: ((event: MessageEvent) => void) | null = null
  onclose: ((event: CloseEvent) => void) | null = null
  onerror: ((event: Event) => void) | null = null
  readonly sent: unknown[] = []
  closedByClient = false

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this)
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data))
  }

  close(): void {
    this.closedByClient = true
    this.readyState = 3
  }

  // --- driven by the test ---
  serverOpen(): void {
    this.readyState = 1
    this.protocol = 'litchi.v1'
    this.onopen?.(new Event('open'))
  }
  serverSend(message: unknown): void {
    this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(message) }))
  }
  serverClose(code = 1006): void {
    this.readyState = 3
    this.onerror?.(new Event('error'))
    this.onclose?.({ code } as CloseEvent)
  }
}

export class FakeEventSource implements EventSourceLike {
  static instances: FakeEventSource[] = []
  static latest(): FakeEventSource {
    const source = FakeEventSource.instances.at(-1)
    if (!source) throw new Error('no EventSource was opened')
    return source
  }

  readyState = 0
  onopen: ((event: Event) => void) | null = null
  onerror: ((event: Event) => void) | null = null
  private readonly listeners = new Map<string, ((event: MessageEvent) => void)[]>()
  closed = false

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this)
  }

  addEventListener(type: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }

  close(): void {
    this.closed = true
    this.readyState = 2
  }

  serverOpen(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }
  serverSend(message: { type: string; seq?: number }, eventName = 'message'): void {
    const event = new MessageEvent(eventName, { data: JSON.stringify(message), lastEventId: String(message.seq ?? '') })
    for (const listener of this.listeners.get(eventName) ?? []) listener(event)
  }
  fail(): void {
    this.readyState = 2
    this.onerror?.(new Event('error'))
  }
}

export class ManualFrameClock implements FrameClock {
  hidden = false
  private callbacks = new Map<number, () => void>()
  private nextHandle = 1
  requestFrame = (callback: () => void) => {
    const handle = this.nextHandle++
    this.callbacks.set(handle, callback)
    return handle
  }
  cancelFrame = (handle: number) => {
    this.callbacks.delete(handle)
  }
  isHidden = () => this.hidden
  get pendingFrames(): number {
    return this.callbacks.size
  }
  runFrame(): void {
    const callbacks = [...this.callbacks.values()]
    this.callbacks.clear()
    for (const callback of callbacks) callback()
  }
}

export class MemoryStorage implements KeyValueStorage {
  readonly data = new Map<string, string>()
  getItem(key: string): string | null {
    return this.data.get(key) ?? null
  }
  setItem(key: string, value: string): void {
    this.data.set(key, value)
  }
  removeItem(key: string): void {
    this.data.delete(key)
  }
}

export function makeJob(id: string, done: number, total = 100, extra: Partial<Job> & { failed?: number; state?: JobState } = {}): Job {
  const failed = extra.failed ?? 0
  const left = Math.max(0, total - done - failed)
  return {
    id,
    name: extra.name ?? `job ${id}`,
    state: extra.state ?? (left === 0 ? 'done' : 'running'),
    created: extra.created ?? `2025-01-01T00:00:0${id.length}Z`,
    counts: { total, queued: left, active: 0, done, failed, cancelled: 0 },
    bytes: extra.bytes ?? done * 1000,
    rate: extra.rate ?? 0,
    eta: extra.eta ?? null,
  }
}

export function makeEnvironment(overrides: Partial<LiveConnectionEnvironment> = {}): LiveConnectionEnvironment & {
  window: EventTarget
  document: EventTarget
} {
  return {
    WebSocket: FakeWebSocket,
    EventSource: FakeEventSource,
    poll: {
      listJobs: async () => [],
      getProgress: async (id: string) => makeJob(id, 0),
      isUnauthorized: () => false,
      isGone: () => false,
    },
    checkAuth: async () => 'ok' as const,
    token: () => null,
    location: { protocol: 'http:', host: '127.0.0.1:9527' },
    random: () => 0.5,
    now: () => Date.now(),
    isOnline: () => true,
    isHidden: () => false,
    window: new EventTarget(),
    document: new EventTarget(),
    ...overrides,
  } as LiveConnectionEnvironment & { window: EventTarget; document: EventTarget }
}

export function resetFakes(): void {
  FakeWebSocket.instances = []
  FakeEventSource.instances = []
}
