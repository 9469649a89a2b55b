/*
 * litchi-client/vue: useJobProgress and useJobs follow the client's live
 * state reactively, switch jobs when the id ref changes, and let go of
 * their subscriptions when their scope (component) ends.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApp, defineComponent, effectScope, h, nextTick, ref } from 'vue'
import { LitchiClient } from '../src/client.js'
import { FakeEventSource, FakeWebSocket, makeJob, MemoryStorage, resetFakes } from '../src/testing.js'
import { createLitchi, setLitchiClient, useJobProgress, useJobs } from '../src/vue.js'

let client: LitchiClient

function serverSays(message: unknown): void {
  FakeWebSocket.latest().serverSend(message)
  client.live.flush()
}

beforeEach(() => {
  resetFakes()
  vi.stubGlobal('WebSocket', FakeWebSocket)
  vi.stubGlobal('EventSource', FakeEventSource)
  client = new LitchiClient({ storage: new MemoryStorage() })
})

afterEach(() => {
  client.close()
  setLitchiClient(null)
  vi.unstubAllGlobals()
})

describe('useJobProgress', () => {
  it('follows the job whose id the ref holds, with percent and connection', () => {
    const scope = effectScope()
    const id = ref<string | null>('1')
    const progress = scope.run(() => useJobProgress(id, client))!
    FakeWebSocket.latest().serverOpen()
    expect(progress.connection.value).toBe('live')
    expect(progress.job.value).toBeUndefined()
    serverSays({ type: 'hello', protocol: 1, seq: 1, jobs: [makeJob('1', 25), makeJob('2', 80)] })
    expect(progress.job.value?.counts.done).toBe(25)
    expect(progress.percent.value).toBe(25)
    serverSays({ type: 'progress', seq: 2, job: makeJob('1', 50) })
    expect(progress.percent.value).toBe(50)
    id.value = '2'
    return nextTick().then(() => {
      expect(progress.job.value?.id).toBe('2')
      expect(progress.percent.value).toBe(80)
      serverSays({ type: 'job', seq: 3, event: 'deleted', job: makeJob('2', 80) })
      expect(progress.job.value).toBeNull()
      scope.stop()
      serverSays({ type: 'job', seq: 4, event: 'created', job: makeJob('2', 0) })
      expect(progress.job.value).toBeNull() // no longer listening
    })
  })
})

describe('useJobs in a component', () => {
  it('renders the live list from the provided client and unsubscribes on unmount', async () => {
    let seen: ReturnType<typeof useJobs> | null = null
    const Jobs = defineComponent({
      setup() {
        seen = useJobs()
        const { jobs, percent } = seen
        return () => h('p', `${jobs.value.map((j) => j.id).join(',')} ${percent.value}%`)
      },
    })
    const root = document.createElement('div')
    const app = createApp(Jobs)
    app.use(createLitchi(client))
    app.mount(root)
    FakeWebSocket.latest().serverOpen()
    serverSays({
      type: 'hello',
      protocol: 1,
      seq: 1,
      jobs: [makeJob('1', 10, 100, { created: '2026-01-01T00:00:00Z' }), makeJob('2', 30, 100, { created: '2026-02-01T00:00:00Z' })],
    })
    await nextTick()
    expect(root.textContent).toBe('2,1 20%')
    app.unmount()
    serverSays({ type: 'job', seq: 2, event: 'created', job: makeJob('3', 0) })
    // Unmounted: its subscription ended, so its list no longer moves.
    expect(seen!.jobs.value.map((j) => j.id)).toEqual(['2', '1'])
    expect(client.live.job('3')).toBeDefined()
    expect(root.textContent).toBe('')
  })
})
