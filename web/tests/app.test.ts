/*
 * The whole app in jsdom with a fake socket and a fake HTTP API: routes render,
 * the job page's main bar is its first progressbar with the right ARIA values,
 * the title shows progress, the connection badge carries data-connection,
 * page changes keep one socket and the numbers, and New job counts lines.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { createApp, nextTick, type App as VueApp } from 'vue'
import type { Router } from 'vue-router'
import App from '@/App.vue'
import { createAppRouter } from '@/router'
import { useLiveStore } from '@/stores/live'
import { useSessionStore } from '@/stores/session'
import { FakeWebSocket, makeEnvironment, makeJob, ManualFrameClock, MemoryStorage, resetFakes } from 'litchi-client/testing'

let app: VueApp
let router: Router
let root: HTMLElement
let clock: ManualFrameClock
const requests: string[] = []

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

beforeEach(async () => {
  resetFakes()
  requests.length = 0
  localStorage.setItem('litchi.user', 'admin')
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input)
      requests.push(`${init?.method ?? 'GET'} ${url}`)
      if (url.startsWith('/api/jobs/1/items')) return jsonResponse({ items: [] })
      if (url === '/api/jobs' && init?.method === 'POST') return jsonResponse(makeJob('2', 0, 2, { name: 'posted' }), 201)
      if (url === '/api/jobs') return jsonResponse({ jobs: [] })
      return jsonResponse({ error: { code: 'not_found', message: 'no' } }, 404)
    }),
  )
  const pinia = createPinia()
  setActivePinia(pinia)
  app = createApp(App)
  app.use(pinia)
  router = createAppRouter()
  app.use(router)
  clock = new ManualFrameClock()
  useSessionStore()
  useLiveStore().start({ environment: makeEnvironment(), clock, storage: new MemoryStorage() })
  root = document.createElement('div')
  document.body.appendChild(root)
  await router.push('/jobs')
  await router.isReady()
  app.mount(root)
})

afterEach(() => {
  useLiveStore().stop(true)
  app.unmount()
  root.remove()
  localStorage.clear()
  vi.unstubAllGlobals()
})

function sendHello(done: number) {
  const socket = FakeWebSocket.latest()
  socket.serverSend({
    type: 'hello',
    protocol: 1,
    seq: 1,
    jobs: [makeJob('1', done, 5000, { name: 'big one', state: 'running' })],
  })
  clock.runFrame()
}

describe('the app', () => {
  it('shows the connection state and the job list', async () => {
    const badge = () => root.querySelector('[data-connection]')!
    expect(badge().getAttribute('data-connection')).toBe('reconnecting')
    FakeWebSocket.latest().serverOpen()
    sendHello(1234)
    await settle()
    expect(badge().getAttribute('data-connection')).toBe('live')
    expect(badge().textContent).toContain('Live')
    expect(root.querySelector('[data-job-id="1"]')?.textContent).toContain('big one')
    // Progress goes in the title only on the job's own page (and names it).
    expect(document.title).toBe('Jobs · Litchi')
  })

  it('job page: the main bar is the first progressbar with accessible values', async () => {
    FakeWebSocket.latest().serverOpen()
    sendHello(1234)
    await router.push('/jobs/1')
    await settle()
    const bar = root.querySelector('main [role="progressbar"]')!
    expect(bar.classList.contains('progress--large')).toBe(true)
    expect(bar.getAttribute('aria-valuenow')).toBe('24')
    expect(bar.getAttribute('aria-valuemin')).toBe('0')
    expect(bar.getAttribute('aria-valuemax')).toBe('100')
    expect(bar.getAttribute('aria-valuetext')).toBe('1,234 of 5,000 images')
    expect(root.querySelector('[data-count="left"]')?.textContent).toBe('3,766')
    expect(document.title).toBe('(24%) big one · Litchi')
    expect(FakeWebSocket.latest().sent).toContainEqual({ type: 'subscribe', job: '1', items: true })
    expect(requests).toContain('GET /api/jobs/1/items?state=done&limit=500')
  })

  it('moving between pages keeps one socket and the live numbers', async () => {
    FakeWebSocket.latest().serverOpen()
    sendHello(10)
    await router.push('/jobs/1')
    await settle()
    await router.push('/settings')
    await settle()
    FakeWebSocket.latest().serverSend({ type: 'progress', seq: 2, job: makeJob('1', 2500, 5000, { state: 'running' }) })
    clock.runFrame()
    await router.push('/jobs/1')
    await settle()
    expect(root.querySelector('main [role="progressbar"]')!.getAttribute('aria-valuenow')).toBe('50')
    expect(document.title).toBe('(50%) job 1 · Litchi')
    expect(FakeWebSocket.instances).toHaveLength(1)
  })

  it('New job counts valid lines live and posts only those', async () => {
    FakeWebSocket.latest().serverOpen()
    await router.push('/jobs/new')
    await settle()
    const textarea = root.querySelector('textarea')!
    textarea.value = 'https://a.example/1.jpg\nnope\nhttps://a.example/2.jpg\n'
    textarea.dispatchEvent(new Event('input'))
    await settle()
    expect(root.querySelector('[data-valid-count]')?.textContent).toBe('2')
    root.querySelector('form')!.dispatchEvent(new Event('submit'))
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe('/jobs/2'))
    const post = vi.mocked(fetch).mock.calls.find(([, init]) => init?.method === 'POST')!
    expect(JSON.parse(String(post[1]!.body))).toEqual({ urls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'] })
    expect(router.currentRoute.value.fullPath).toBe('/jobs/2')
    expect(useLiveStore().job('2')?.name).toBe('posted')
  })

  it('New job sends each URL once and says how many duplicates it left out', async () => {
    FakeWebSocket.latest().serverOpen()
    await router.push('/jobs/new')
    await settle()
    const textarea = root.querySelector('textarea')!
    textarea.value = 'https://a.example/1.jpg\nhttps://a.example/2.jpg\nhttps://a.example/1.jpg\n'
    textarea.dispatchEvent(new Event('input'))
    await settle()
    expect(root.querySelector('[data-valid-count]')?.textContent).toBe('2')
    expect(root.querySelector('[data-duplicates]')?.textContent).toContain('1 duplicate left out')
    root.querySelector('form')!.dispatchEvent(new Event('submit'))
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe('/jobs/2'))
    const post = vi.mocked(fetch).mock.calls.find(([, init]) => init?.method === 'POST')!
    expect(JSON.parse(String(post[1]!.body))).toEqual({ urls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'] })
  })

  it('an unknown path shows Not Found instead of the job list', async () => {
    await router.push('/no/such/page')
    await settle()
    expect(router.currentRoute.value.path).toBe('/no/such/page')
    expect(root.querySelector('[data-not-found]')?.textContent).toContain('Page not found')
    expect(document.title).toBe('Not found · Litchi')
  })

  it('dims the numbers while the connection is down', async () => {
    FakeWebSocket.latest().serverOpen()
    sendHello(10)
    await settle()
    expect(root.querySelector('main')!.hasAttribute('data-stale')).toBe(false)
    FakeWebSocket.latest().serverClose(1006)
    await settle()
    expect(root.querySelector('main')!.hasAttribute('data-stale')).toBe(true)
  })

  it('sends signed-out users to /login', async () => {
    useSessionStore().expire()
    await router.push('/jobs/1')
    await settle()
    expect(router.currentRoute.value.path).toBe('/login')
    expect(router.currentRoute.value.query.next).toBe('/jobs/1')
  })
})
